"""SMS text messaging for registration systems: exact Twilio segment counts, consent, previews,
crash-safe sends and STOP handling, from the Rust library `sms-ffi`.

Everything of the generated module (``sms_text._native.sms_ffi``) is re-exported here; this file adds what only
Python needs: a batch counter that crosses the boundary once, and reprs that never show a
secret.
"""

import operator as _operator
import sys as _sys
import threading as _threading
from array import array as _array
from collections.abc import MutableSequence as _MutableSequence
from operator import index as _index

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


class _PreviewItems(_MutableSequence):
    """The items of a ``Preview`` made by ``SmsClient.preview``: a list in all a host does with
    one (``len``, indexes and slices, iteration, ``in``, ``==`` with a list, ``repr``/``str``,
    ``+``, ``*``, ``copy``, ``sort``, changes in place, pickling and copying, which give a
    plain ``list``), but whose ``PreviewItem`` objects are made the first time each is read.
    Making 100,000 of them took Python longer than the whole preview takes Rust, and a host
    often shows the totals and a page of items. Each item is made once and kept (the same
    object on every read, as in a list); the first change in place makes them all. Unlike a
    list, ``isinstance(items, list)`` is false.
    """

    __slots__ = ("_items", "_build", "_left", "_lock")

    def __init__(self, count, build):
        self._items = [None] * count
        # None once every item is made: the answer it reads from is let go.
        self._build = build if count else None
        self._left = count
        self._lock = _threading.Lock()

    def _item(self, i):
        item = self._items[i]
        if item is None and self._build is not None:
            self._make(i, i + 1)
            item = self._items[i]
        return item

    def _make(self, start, stop):
        """Makes the items from ``start`` to ``stop`` not made yet (a run at once: reading in
        order pays one lock a run, not one an item)."""
        with self._lock:  # two threads reading one item get the same object
            build, items = self._build, self._items
            if build is None:
                return
            made = 0
            for i in range(start, stop):
                if items[i] is None:
                    items[i] = build(i)
                    made += 1
            self._left -= made
            if not self._left:
                self._build = None

    def _all(self):
        """Every item made: the list that holds them."""
        if self._build is not None:
            self._make(0, len(self._items))
        return self._items

    @staticmethod
    def _as_list(other):
        return other._all() if isinstance(other, _PreviewItems) else other

    def __len__(self):
        return len(self._items)

    def __getitem__(self, index):
        if self._build is None:
            return self._items[index]
        if isinstance(index, slice):
            indexes = range(*index.indices(len(self._items)))
            if indexes.step == 1 and indexes:
                self._make(indexes.start, indexes.stop)
            return [self._item(i) for i in indexes]
        i = _index(index)
        n = len(self._items)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("list index out of range")
        return self._item(i)

    def __iter__(self):
        # As a list's iterator: the length is read at each step. Items not made yet are made
        # a run ahead.
        i = 0
        items = self._items
        while i < len(items):
            item = items[i]
            if item is None and self._build is not None:
                self._make(i, min(i + 256, len(items)))
                item = items[i]
            yield item
            i += 1

    def __reversed__(self):
        i = len(self._items) - 1
        while 0 <= i < len(self._items):
            yield self._item(i)
            i -= 1

    def __contains__(self, value):
        return any(item is value or item == value for item in self)

    def __eq__(self, other):
        if not isinstance(other, (list, _PreviewItems)):
            return NotImplemented
        if len(self) != len(other):
            return False
        return all(a is b or a == b for a, b in zip(self, other))

    def __ne__(self, other):
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # a list is not hashable

    def _compare(self, other, how):
        if not isinstance(other, (list, _PreviewItems)):
            return NotImplemented
        return how(self._all(), self._as_list(other))

    def __lt__(self, other):
        return self._compare(other, _operator.lt)

    def __le__(self, other):
        return self._compare(other, _operator.le)

    def __gt__(self, other):
        return self._compare(other, _operator.gt)

    def __ge__(self, other):
        return self._compare(other, _operator.ge)

    def __repr__(self):
        return repr(self._all())

    def __add__(self, other):
        if not isinstance(other, (list, _PreviewItems)):
            return NotImplemented
        return self._all() + self._as_list(other)

    def __radd__(self, other):
        if not isinstance(other, list):
            return NotImplemented
        return other + self._all()

    def __iadd__(self, other):
        self._all().extend(other)
        return self

    def __mul__(self, times):
        return self._all() * times

    __rmul__ = __mul__

    def __imul__(self, times):
        self._all()
        self._items *= times
        return self

    def __reduce__(self):
        # pickle, copy and deepcopy give a plain list of the same items.
        return (list, (list(self._all()),))

    def __setitem__(self, index, value):
        self._all()[index] = value

    def __delitem__(self, index):
        del self._all()[index]

    def insert(self, index, value):
        self._all().insert(index, value)

    def append(self, value):
        self._all().append(value)

    def extend(self, values):
        self._all().extend(values)

    def pop(self, index=-1):
        return self._all().pop(index)

    def remove(self, value):
        self._all().remove(value)

    def clear(self):
        self._all().clear()

    def reverse(self):
        self._all().reverse()

    def sort(self, *, key=None, reverse=False):
        self._all().sort(key=key, reverse=reverse)

    def copy(self):
        return list(self._all())

    def index(self, value, start=0, stop=_sys.maxsize):
        return self._all().index(value, start, stop)

    def count(self, value):
        return self._all().count(value)


def _install_fast_preview():
    """``SmsClient.preview`` through ``preview_packed``: the recipients cross as one buffer
    made by a few C-level passes (``attrgetter``, ``str.join``; no Python code runs per
    recipient), and the answer comes back as one, whose items are made only when read
    (``_PreviewItems``), instead of uniffi's field-by-field buffers or a JSON document each way.
    Both cross as strings, which uniffi hands over whole (it copies ``bytes`` one at a time on
    the Rust side). The same ``Preview``; input the packed path cannot carry (a wrong type, a
    lone surrogate, a subclass, NUL in a string) goes through the generated method, which
    answers or raises uniffi's own error.
    """
    import datetime
    import json
    from itertools import chain, compress, repeat
    from operator import attrgetter, is_, is_not

    client = _ffi.SmsClient
    generic = client.preview
    packed_preview = getattr(client, "preview_packed", None)
    if packed_preview is None:
        return
    recipient = _ffi.Recipient
    kinds_allowed = {_ffi.RecipientKind.CLIENT, _ffi.RecipientKind.STAFF}
    staff_kind = _ffi.RecipientKind.STAFF
    item = _ffi.PreviewItem
    eligible = _ffi.PreviewOutcome.ELIGIBLE
    blocked = _ffi.PreviewOutcome.BLOCKED
    totals_record = _ffi.PreviewTotals
    preview_record = _ffi.Preview
    held_record = _ffi.HeldSummary
    epoch = datetime.datetime.fromtimestamp(0, tz=datetime.timezone.utc)
    encodings = _ENCODINGS
    new = object.__new__
    u32 = next((code for code in "IL" if _array(code).itemsize == 4), None)
    if u32 is None or _array("Q").itemsize != 8:
        return
    main_fields = attrgetter("record_id", "first_name", "last_name", "mobile")
    kind_of, zone_of, fields_of = attrgetter("kind"), attrgetter("time_zone"), attrgetter("fields")
    methods_of = attrgetter("permitted_marketing_methods")
    permitted_of = attrgetter("permitted_sms_text")
    clients_of = bytes.maketrans(b"\0\1", b"\1\0")  # staff flags -> client flags
    flat = chain.from_iterable

    def pack(recipients):
        """The recipients as sms-ffi's `packed` module reads them, or None."""
        if set(map(type, recipients)) != {recipient}:
            return None
        kinds = list(map(kind_of, recipients))
        kind_types = list(map(type, kinds))
        if not set(kind_types) <= kinds_allowed:
            return None
        staff = bytes(map(is_, kind_types, repeat(staff_kind)))
        permitted = list(map(permitted_of, compress(kinds, staff)))
        if not set(map(type, permitted)) <= {bool}:
            return None
        zones = list(map(zone_of, recipients))
        given = bytes(map(is_not, zones, repeat(None)))
        fields = list(map(fields_of, recipients))
        # str.join refuses anything but str, and dict.items anything but a dict.
        return "".join((
            str(len(recipients)), "\0", staff.decode("latin-1"),
            bytes(permitted).decode("latin-1"), given.decode("latin-1"),
            "".join(map(chr, map(len, fields))),
            "\0".join(chain(
                flat(map(main_fields, recipients)),
                map(methods_of, compress(kinds, staff.translate(clients_of))),
                compress(zones, given),
                flat(flat(map(dict.items, fields))),
            )),
        ))

    def read(answer):
        """The Preview of a packed answer; its items are made when read."""
        end = answer.index("\0")
        n = int(answer[:end])
        at = answer.index("\0", end + 1)
        size = int(answer[end + 1:at])
        at += 1
        meta = json.loads(answer[at:at + size])
        held = meta.pop("held", None)
        if held is not None:
            ms = datetime.timedelta(milliseconds=1)
            held = held_record(
                records=held["records"],
                earliest=epoch + held["earliest_ms"] * ms,
                earliest_local=held["earliest_local"],
                latest=epoch + held["latest_ms"] * ms,
                latest_local=held["latest_local"],
            )
        totals = totals_record(**meta)
        at += size
        base = at + 58 * n
        runs = []  # flags, segments, ends: decoded when the first item is read

        def decode():
            flags = bytes.fromhex(answer[at:at + 2 * n])
            segments, ends = _array(u32), _array("Q")
            segments.frombytes(bytes.fromhex(answer[at + 2 * n:at + 10 * n]))
            ends.frombytes(bytes.fromhex(answer[at + 10 * n:base]))
            if _sys.byteorder != "little":
                segments.byteswap()
                ends.byteswap()
            runs.extend((flags, segments, ends))

        def build(i):
            if not runs:
                decode()
            flags, segments, ends = runs
            start = base + ends[3 * i - 1] if i else base
            a, b, c = base + ends[3 * i], base + ends[3 * i + 1], base + ends[3 * i + 2]
            flag = flags[i]
            # The generated classes' __init__ only stores its arguments: storing them straight
            # makes the very same objects (the suite compares their vars()) in a third of the time.
            if flag:
                outcome = new(eligible)
                outcome.number = answer[a:b]
                outcome.body = answer[b:c]
                outcome.encoding = encodings[flag >> 1]
                outcome.segments = segments[i]
            else:
                outcome = new(blocked)
                outcome.reason_code = answer[a:b]
                outcome.reason = answer[b:c]
            one = new(item)
            one.record_id = answer[start:a]
            one.outcome = outcome
            return one

        return preview_record(items=_PreviewItems(n, build), totals=totals, held=held)

    def preview(self, recipients, body):
        """Who would be texted, who not and why, and the cost; nothing is stored or sent."""
        if not isinstance(body, str) or not isinstance(recipients, list):
            return generic(self, recipients, body)
        try:
            data = pack(recipients)
            if data is None:
                return generic(self, recipients, body)
            answer = packed_preview(self, data, body)
        except (TypeError, AttributeError, ValueError, OverflowError, _ffi.SmsError.InvalidInput):
            # A wrong type, a lone surrogate (UnicodeEncodeError is a ValueError), a string
            # holding NUL: the generated method carries it or raises its own error.
            return generic(self, recipients, body)
        return read(answer)

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


def _database_shown(value):
    """A database URL (any scheme: one the library refuses may still hold a password) with its
    password as `***`, from the user part and from a `password=` parameter alike, as the library
    shows it; a file path as it is. Never raises."""
    try:
        text = str(value)
        scheme, sep, rest = text.partition("://")
        if not sep:
            scheme, sep, rest = text.partition(":")
            if not sep or scheme.strip().lower() not in ("postgres", "postgresql"):
                return text
            slashes = len(rest) - len(rest.lstrip("/"))
            sep, rest = ":" + "/" * slashes, rest[slashes:]
        rest, question, query = rest.partition("?")
        authority, slash, path = rest.partition("/")
        userinfo, at, host = authority.rpartition("@")
        if at and ":" in userinfo:
            authority = "{}:***@{}".format(userinfo.split(":", 1)[0], host)
        path = slash + path
        if question:
            query = "&".join(
                "password=***" if part.split("=", 1)[0].lower() == "password" else part
                for part in query.split("&")
            )
        return "{}{}{}{}{}{}".format(scheme, sep, authority, path, question, query)
    except Exception:  # a repr must never raise
        return "<database>"


def _config_str(self):
    shown = []
    for name, value in vars(self).items():
        if name == "webhook_auth_token" and value is not None:
            value = "***"
        if name == "database":
            value = _database_shown(value)
        shown.append("{}={}".format(name, value))
    return "SmsConfig({})".format(", ".join(shown))


# These two hold secrets. The generated __str__/__repr__ call the library's Rust Display/Debug,
# which show `***` but raise when a field holds the wrong type (a repr must never raise: a
# debugger or a log line calls it); these show `***` too, in Python alone.
_ffi.ProviderConfig.TWILIO.__str__ = _twilio_str
_ffi.ProviderConfig.TWILIO.__repr__ = _twilio_str
_ffi.SmsConfig.__str__ = _config_str
_ffi.SmsConfig.__repr__ = _config_str


def _install_fast_copies():
    """uniffi 0.31's Python runtime copies every byte it sends to Rust in a Python loop
    (``_UniffiRustBufferBuilder.write``): about 60 ns a byte, so a 160-character text costs
    10 us before Rust sees it, and a 16 MB batch 10 s. These two replacements copy with one
    ``memmove``; they write exactly the same bytes (the suite's round trips prove it), and
    ``bindings/check-generated.sh`` pins the generated module they patch. Reading back,
    ``_UniffiRustBufferStream.read`` slices a ctypes pointer, some 3 ns a byte (30 ms for the
    answer of a 100,000-record preview): a long read is one ``string_at`` instead, the same
    bytes.
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

    stream = getattr(_ffi, "_UniffiRustBufferStream", None)
    generated_read = getattr(stream, "read", None)
    if generated_read is None:
        return
    string_at = ctypes.string_at

    def read(self, size):
        if size < 256:  # a short read: slicing is as quick as the call below
            return generated_read(self, size)
        if self.offset + size > self.len:
            raise _ffi.InternalError("read past end of rust buffer")
        data = string_at(ctypes.cast(self.data, address).value + self.offset, size)
        self.offset += size
        return data

    stream.read = read


_install_fast_copies()
