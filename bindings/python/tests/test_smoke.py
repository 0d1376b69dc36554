"""The whole chain works: Rust built by maturin, the generated module, the hand-written package,
and a callback from Rust into Python. (A toy API for now; the real suite replaces it.)"""

import sms_text


class Recorder(sms_text.Listener):
    def __init__(self):
        self.seen = []

    def on(self, x):
        self.seen.append(x)


def test_record_in_and_number_out():
    assert sms_text.f(sms_text.Thing(a=7)) == 7


def test_python_listener_is_called_back_from_rust():
    recorder = Recorder()
    assert sms_text.f(sms_text.Thing(a=42, b="x"), recorder) == 42
    assert recorder.seen == [42]


def test_package_reexports_the_generated_names():
    assert "f" in sms_text.__all__
    assert sms_text.f is sms_text._native.sms_ffi.f
