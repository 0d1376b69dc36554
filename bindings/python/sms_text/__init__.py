"""SMS text messaging for registration systems: exact Twilio segment counts, consent, previews,
crash-safe sends and STOP handling, from the Rust library `sms-ffi`.

Everything of the generated module (``sms_text._native.sms_ffi``) is re-exported here; this file adds what only
Python needs: a batch counter that crosses the boundary once, and reprs that never show a
secret.
"""

from array import array as _array

from ._native import *  # noqa: F401,F403  (the whole generated API)
from ._native import sms_ffi as _ffi

# What `from sms_text import *` gives: the generated names and the helpers below.
__all__ = list(getattr(_ffi, "__all__", ()))

_ENCODINGS = (_ffi.Encoding.GSM7, _ffi.Encoding.UCS2)


def _batch_counter():
    """The library's plain C function ``sms_text_count_segments_batch``: the texts go in as
    one buffer ctypes hands over without a copy, and the counts are written straight into
    Python's arrays. uniffi would copy a ``bytes`` argument byte by byte, on both sides."""
    import ctypes

    lib = getattr(_ffi, "_UniffiLib", None)
    function = getattr(lib, "sms_text_count_segments_batch", None) if lib is not None else None
    if function is None:
        return None
    function.argtypes = [
        ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint8, ctypes.c_size_t,
        ctypes.c_void_p, ctypes.c_void_p,
    ]
    function.restype = ctypes.c_int64
    return function


_count_batch = _batch_counter()


def _views_counter():
    """The library's plain C functions ``sms_text_python_utf8_views`` and
    ``sms_text_count_segments_views``: the first, called holding the GIL, asks Python's own C
    API (``PyUnicode_AsUTF8AndSize``) where the UTF-8 of each ``str`` is (an ASCII ``str`` is
    its own UTF-8; any other makes it once and keeps it), the second counts those bytes where
    they lie, on every core, with the GIL released. Nothing is encoded or joined in Python:
    that took as long as the counting. ``None`` where Python has no C API for ctypes (PyPy):
    the joined buffer below serves there."""
    import ctypes

    lib = getattr(_ffi, "_UniffiLib", None)
    api = getattr(ctypes, "pythonapi", None)
    views = getattr(lib, "sms_text_python_utf8_views", None) if lib is not None else None
    count = getattr(lib, "sms_text_count_segments_views", None) if lib is not None else None
    if api is None or views is None or count is None:
        return None
    try:
        entry_points = [
            ctypes.cast(getattr(api, name), ctypes.c_void_p).value
            for name in ("PyTuple_GetItem", "PyUnicode_AsUTF8AndSize", "PyErr_Clear")
        ]
    except AttributeError:
        return None
    pointer, size = ctypes.c_void_p, ctypes.c_size_t
    # PYFUNCTYPE: called holding the GIL, as Python's C API must be.
    find = ctypes.PYFUNCTYPE(
        ctypes.c_int64, ctypes.py_object, size, pointer, pointer, pointer, pointer, pointer
    )(ctypes.cast(views, pointer).value)
    count.argtypes = [pointer, pointer, size, ctypes.c_uint8, pointer, pointer]
    count.restype = ctypes.c_int64
    addressof = ctypes.addressof

    def count_views(texts, smart_encoding):
        """``(total, segments, ucs2)`` of a non-empty tuple of texts, or ``None`` when the C
        path cannot carry one of them (not a ``str``, a lone surrogate)."""
        n = len(texts)
        starts, lens = (pointer * n)(), (size * n)()
        if find(texts, n, *entry_points, starts, lens) < 0:
            return None
        segments = _array("I", bytes(4 * n))
        ucs2 = _array("B", bytes(n))
        # The tuple holds every str, so their UTF-8 stays put while the GIL is released.
        total = count(
            addressof(starts), addressof(lens), n, smart_encoding,
            segments.buffer_info()[0], ucs2.buffer_info()[0],
        )
        return None if total < 0 else (total, segments, ucs2)

    return count_views


_count_views = _views_counter()


def _count_joined(texts, smart_encoding):
    """``(total, segments, ucs2)`` through ``sms_text_count_segments_batch``: the texts encoded
    and joined into one buffer; ``None`` when it cannot carry them (NUL in a text, a lone
    surrogate, a non-str)."""
    n = len(texts)
    try:
        # Encoding each text and joining the bytes is much quicker than joining the texts:
        # one emoji would make the joined str four bytes a character.
        data = b"\0".join([text.encode("utf-8") for text in texts])
    except (AttributeError, TypeError, UnicodeEncodeError):
        return None
    segments = _array("I", bytes(4 * n))
    ucs2 = _array("B", bytes(n))
    total = _count_batch(
        data, len(data), smart_encoding, n, segments.buffer_info()[0], ucs2.buffer_info()[0]
    )
    # -2: the buffer holds more texts than the list (a text holds NUL); the library checks
    # it, in one pass over the bytes quicker than Python's.
    return None if total < 0 else (total, segments, ucs2)


def count_segments_many(texts, smart_encoding=False):
    """Segments and encoding of many texts at once, in order: a ``SegmentBatch``.

    The texts are counted where Python keeps their UTF-8 (or, without Python's C API, as one
    joined buffer), on every core, and the counts come back in place: a million texts take
    about a second or less. A text the fast path cannot carry (a lone surrogate), or an
    argument of another type, goes through the generated function, with the same answer or
    uniffi's own error.
    """
    texts = tuple(texts)  # one reference to each str for as long as Rust reads it
    if not texts:
        return _ffi.SegmentBatch(segments=[], encodings=[], total_segments=0)
    counted = None
    if type(smart_encoding) is bool:
        if _count_views is not None:
            counted = _count_views(texts, smart_encoding)
        elif _count_batch is not None:
            counted = _count_joined(texts, smart_encoding)
    if counted is None:
        return _ffi.count_segments_many(list(texts), smart_encoding)
    total, segments, ucs2 = counted
    return _ffi.SegmentBatch(
        segments=segments.tolist(),
        encodings=list(map(_ENCODINGS.__getitem__, ucs2)),
        total_segments=total,
    )


count_segments_many.__wrapped__ = _ffi.count_segments_many
if "count_segments_many" not in __all__:
    __all__.append("count_segments_many")


def _fast_count_segments():
    """``count_segments`` through the library's plain C function ``sms_text_count_segments``:
    one ctypes call instead of uniffi's buffer round trips (about 40 us a call). The answer is
    the same record; anything the C path cannot carry goes through the generated function."""
    import ctypes

    lib = getattr(_ffi, "_UniffiLib", None)
    function = getattr(lib, "sms_text_count_segments", None) if lib is not None else None
    detail_of = getattr(lib, "sms_text_count_segments_detail", None) if lib is not None else None
    if function is None or detail_of is None:
        return None
    function.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint8]
    function.restype = ctypes.c_int64
    detail_of.argtypes = [ctypes.POINTER(ctypes.c_size_t)]
    detail_of.restype = ctypes.c_void_p
    generic = _ffi.count_segments
    record = _ffi.SegmentCount
    encodings = (_ffi.Encoding.GSM7, _ffi.Encoding.GSM7, _ffi.Encoding.UCS2, _ffi.Encoding.UCS2)
    string_at = ctypes.string_at

    def count_segments(text, smart_encoding):
        """Encoding and segments of ``text``, exactly as Twilio counts them, with the
        characters that force UCS-2 and the text after Smart Encoding."""
        if type(text) is not str or type(smart_encoding) is not bool:
            return generic(text, smart_encoding)  # uniffi's own checks and errors
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            return generic(text, smart_encoding)
        answer = function(data, len(data), smart_encoding)
        if answer < 0:
            return generic(text, smart_encoding)
        if not answer & 1:
            return record(
                encoding=encodings[answer & 3], segments=answer >> 2, non_gsm=[], smart_text=None
            )
        # The detail lives in the library's storage for this thread until its next call here.
        size = ctypes.c_size_t()
        address = detail_of(ctypes.byref(size))
        head, *non_gsm = string_at(address, size.value).decode("utf-8").split("\0")
        return record(
            encoding=encodings[answer & 3],
            segments=answer >> 2,
            non_gsm=non_gsm,
            smart_text=head[1:] if head[0] == "1" else None,
        )

    count_segments.__wrapped__ = generic
    return count_segments


count_segments = _fast_count_segments() or _ffi.count_segments


def _install_fast_preview():
    """``SmsClient.preview`` through ``preview_json``: the recipients cross as one JSON
    document made by Python's C encoder, and the answer comes back as one, instead of uniffi's
    field-by-field buffers (about 20 writes a recipient). The same ``Preview``; input the JSON
    path cannot carry (a wrong type, a lone surrogate) goes through the generated method, which
    raises uniffi's own error."""
    import json

    client = _ffi.SmsClient
    generic = client.preview
    client_kind = _ffi.RecipientKind.CLIENT
    staff_kind = _ffi.RecipientKind.STAFF
    item = _ffi.PreviewItem
    eligible = _ffi.PreviewOutcome.ELIGIBLE
    blocked = _ffi.PreviewOutcome.BLOCKED
    totals = _ffi.PreviewTotals
    preview_record = _ffi.Preview
    recipient = _ffi.Recipient
    encodings = _ENCODINGS
    encoder = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":"))

    def fields_of(fields):
        # JSON would turn a key 2 into "2": only str keys take the fast path.
        if not fields:
            return None
        if any(type(key) is not str for key in fields):
            raise TypeError
        return fields

    def kind_value(kind):
        if type(kind) is client_kind:
            value = kind.permitted_marketing_methods
            return value if type(value) is str else None
        if type(kind) is staff_kind:
            value = kind.permitted_sms_text
            return value if type(value) is bool else None
        return None

    def preview(self, recipients, body):
        """Who would be texted, who not and why, and the cost; nothing is stored or sent."""
        if not isinstance(body, str) or not isinstance(recipients, list):
            return generic(self, recipients, body)
        try:
            rows = [
                (
                    r.record_id,
                    kind_value(r.kind),
                    r.first_name,
                    r.last_name,
                    r.mobile,
                    r.time_zone,
                    fields_of(r.fields),
                )
                for r in recipients
                if type(r) is recipient
            ]
            if len(rows) != len(recipients) or any(row[1] is None for row in rows):
                raise TypeError
            data = encoder.encode(rows).encode("utf-8")
        except (TypeError, AttributeError, ValueError, UnicodeEncodeError):
            return generic(self, recipients, body)
        try:
            answer = json.loads(self.preview_json(data, body))
        except _ffi.SmsError.InvalidInput:
            # A field of the wrong type the JSON shape let through (a number for a name...):
            # the generated method names it.
            return generic(self, recipients, body)
        items = [
            item(
                record_id=row[0],
                outcome=eligible(
                    number=row[1], body=row[2], encoding=encodings[row[3]], segments=row[4]
                ),
            )
            if len(row) == 5
            else item(record_id=row[0], outcome=blocked(reason_code=row[1], reason=row[2]))
            for row in answer["items"]
        ]
        return preview_record(items=items, totals=totals(**answer["totals"]))

    preview.__wrapped__ = generic
    client.preview = preview


_install_fast_preview()


def _twilio_str(self):
    return (
        "ProviderConfig.TWILIO(account_sid={}, auth_token=***, from_number={}, "
        "messaging_service_sid={}, base_url={})".format(
            self.account_sid, self.from_number, self.messaging_service_sid, self.base_url
        )
    )


def _config_str(self):
    shown = []
    for name, value in vars(self).items():
        if name == "webhook_auth_token" and value is not None:
            value = "***"
        shown.append("{}={}".format(name, value))
    return "SmsConfig({})".format(", ".join(shown))


# These two hold secrets. The generated __str__/__repr__ call the library's Rust Display/Debug,
# which show `***` but raise when a field holds the wrong type (a repr must never raise: a
# debugger or a log line calls it); these show `***` too, in Python alone.
_ffi.ProviderConfig.TWILIO.__str__ = _twilio_str
_ffi.ProviderConfig.TWILIO.__repr__ = _twilio_str
_ffi.SmsConfig.__str__ = _config_str
_ffi.SmsConfig.__repr__ = _config_str


def _install_fast_writes():
    """uniffi 0.31's Python runtime copies every byte it sends to Rust in a Python loop
    (``_UniffiRustBufferBuilder.write``): about 60 ns a byte, so a 160-character text costs
    10 us before Rust sees it, and a 16 MB batch 10 s. These two replacements copy with one
    ``memmove``; they write exactly the same bytes (the suite's round trips prove it), and
    ``bindings/check-generated.sh`` pins the generated module they patch.
    """
    import ctypes
    import struct

    builder = getattr(_ffi, "_UniffiRustBufferBuilder", None)
    rust_buffer = getattr(_ffi, "_UniffiRustBuffer", None)
    bytes_converter = getattr(_ffi, "_UniffiFfiConverterBytes", None)
    if (
        builder is None
        or rust_buffer is None
        or bytes_converter is None
        or not hasattr(builder, "_reserve")
    ):
        return  # another uniffi runtime: leave it as generated
    address = ctypes.c_void_p

    def write(self, value):
        # Every caller passes bytes (the converters below and uniffi's own encode to bytes
        # first), so len() is the byte length.
        n = len(value)
        rbuf = self.rbuf
        if rbuf.len + n > rbuf.capacity:
            rbuf = self.rbuf = rust_buffer.reserve(rbuf, n)
        if n:
            ctypes.memmove(ctypes.cast(rbuf.data, address).value + rbuf.len, value, n)
        rbuf.len += n

    def write_bytes(value, buf):
        # A bytes-like argument crosses whole, whatever its item size (array('H') included):
        # its length prefix and its content are both its length in bytes.
        data = value if type(value) is bytes else memoryview(value).cast("B").tobytes()
        buf.write_i32(len(data))
        buf.write(data)

    bytes_converter.write = staticmethod(write_bytes)

    def pack_into(self, size, format, value):
        write(self, struct.pack(format, value))

    builder.write = write
    builder._pack_into = pack_into


_install_fast_writes()
