"""The SMS library for Python hosts: count segments, preview, send, resume, report, handle replies.

Everything public comes from the generated uniffi module (``sms_text._native.sms_ffi``); the
helpers written by hand for Python hosts are added below it.
"""

from ._native import *  # noqa: F401,F403
from ._native import sms_ffi as _ffi

# What `from sms_text import *` gives: the generated names (uniffi lists them in __all__) and the
# hand-written helpers added to this module.
__all__ = list(getattr(_ffi, "__all__", ()))
