// The Kotlin host check, run by bindings/kotlin/run-tests.sh: it calls the library through the
// generated bindings (package uniffi.sms_ffi) and JNA, prints what it saw, and exits non-zero on
// the first failed check. (A toy API for now; the real program replaces the body of main.)

import kotlin.system.exitProcess
import uniffi.sms_ffi.Listener
import uniffi.sms_ffi.Thing
import uniffi.sms_ffi.f

private var failures = 0

private fun check(what: String, ok: Boolean) {
    println((if (ok) "ok: " else "FAILED: ") + what)
    if (!ok) failures++
}

class Recorder : Listener {
    val seen = mutableListOf<UInt>()

    override fun on(x: UInt) {
        seen.add(x)
    }
}

fun main() {
    check("f returns the record's number", f(Thing(a = 7u)) == 7u)

    val recorder = Recorder()
    val got = f(Thing(a = 42u, b = "x"), recorder)
    check("f with a Kotlin listener returns 42 (got $got)", got == 42u)
    check("the Kotlin listener was called back once with 42 (saw ${recorder.seen})", recorder.seen == listOf(42u))

    if (failures > 0) {
        println("$failures check(s) failed")
        exitProcess(1)
    }
    println("all checks passed")
}
