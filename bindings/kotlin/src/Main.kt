// The Kotlin host check, run by bindings/kotlin/run-tests.sh: it calls the library through the
// generated bindings (package uniffi.sms_ffi) and JNA, prints what it saw, and exits non-zero
// on any failed check. What it prints must not vary from run to run (no times, no provider
// ids): run-tests.sh compares it with expected-output.txt.

import java.nio.file.Files
import java.nio.file.Path
import java.util.Collections
import kotlin.system.exitProcess
import uniffi.sms_ffi.CancelHandle
import uniffi.sms_ffi.Encoding
import uniffi.sms_ffi.HostException
import uniffi.sms_ffi.OptOutAction
import uniffi.sms_ffi.OptOutChange
import uniffi.sms_ffi.OptOutStore
import uniffi.sms_ffi.Preview
import uniffi.sms_ffi.PreviewOutcome
import uniffi.sms_ffi.ProgressListener
import uniffi.sms_ffi.ProviderConfig
import uniffi.sms_ffi.Recipient
import uniffi.sms_ffi.RecipientKind
import uniffi.sms_ffi.RecordStatus
import uniffi.sms_ffi.ReplyAction
import uniffi.sms_ffi.SendProgress
import uniffi.sms_ffi.SmsClient
import uniffi.sms_ffi.SmsConfig
import uniffi.sms_ffi.SmsException
import uniffi.sms_ffi.countSegments

private var failures = 0

private fun check(what: String, ok: Boolean) {
    println((if (ok) "ok: " else "FAILED: ") + what)
    if (!ok) failures++
}

/** Runs [block], which must throw an [SmsException]; returns it (null, and a failed check, if not). */
private fun expectSmsException(what: String, block: () -> Unit): SmsException? {
    try {
        block()
    } catch (e: SmsException) {
        return e
    }
    check("$what raises an SmsException", false)
    return null
}

private fun client(kind: String = "Text") =
    RecipientKind.Client(permittedMarketingMethods = kind)

private fun recipient(
    id: String,
    mobile: String,
    kind: RecipientKind = client(),
    fields: Map<String, String> = emptyMap(),
) = Recipient(
    recordId = id,
    kind = kind,
    firstName = id.replaceFirstChar { it.uppercase() },
    lastName = "Lee",
    mobile = mobile,
    fields = fields,
)

private fun blocked(preview: Preview): Map<String, String> =
    preview.items
        .mapNotNull { item -> (item.outcome as? PreviewOutcome.Blocked)?.let { item.recordId to it.reasonCode } }
        .toMap()

/** Records progress and the threads it arrived on. */
private class Recorder : ProgressListener {
    val progress: MutableList<SendProgress> = Collections.synchronizedList(mutableListOf())
    val warnings: MutableList<String> = Collections.synchronizedList(mutableListOf())
    val threads: MutableSet<Thread> = Collections.synchronizedSet(mutableSetOf())

    override fun onProgress(progress: SendProgress) {
        threads.add(Thread.currentThread())
        this.progress.add(progress)
    }

    override fun onWarning(warning: String) {
        threads.add(Thread.currentThread())
        warnings.add(warning)
    }
}

/** A listener that fails on the first progress it gets, by throwing [failure]. */
private class Broken(val failure: () -> Exception) : ProgressListener {
    override fun onProgress(progress: SendProgress) {
        throw failure()
    }

    override fun onWarning(warning: String) {}
}

/** Opt-outs kept by the host (a list here; a table in a real host). */
private class HostStore : OptOutStore {
    val changes: MutableList<OptOutChange> = Collections.synchronizedList(mutableListOf())

    override fun record(change: OptOutChange) {
        changes.add(change)
    }

    override fun history(number: String): List<OptOutChange> =
        synchronized(changes) { changes.filter { it.number == number } }

    override fun allChanges(): List<OptOutChange> = synchronized(changes) { changes.toList() }
}

private fun segments() {
    val plain = countSegments("Class starts Monday at 9am", false)
    println("segments: plain text: ${plain.encoding} ${plain.segments}")
    check("plain text is one GSM-7 segment", plain.encoding == Encoding.GSM7 && plain.segments == 1u && plain.nonGsm.isEmpty())

    val long = countSegments("x".repeat(161), false)
    println("segments: 161 GSM-7 characters: ${long.segments}")
    check("161 GSM-7 characters are 2 segments", long.encoding == Encoding.GSM7 && long.segments == 2u)

    val emoji = countSegments("See you there \uD83C\uDF89", false)
    println("segments: with an emoji: ${emoji.encoding} ${emoji.segments} nonGsm=${emoji.nonGsm}")
    check("an emoji forces UCS-2 and is named", emoji.encoding == Encoding.UCS2 && emoji.nonGsm == listOf("\uD83C\uDF89"))

    val curly = "It\u2019s \u201Cfree\u201D"
    val raw = countSegments(curly, false)
    val smart = countSegments(curly, true)
    println("segments: smart quotes: ${raw.encoding}, with smart encoding: ${smart.encoding} \"${smart.smartText}\"")
    check("smart quotes are UCS-2 without smart encoding", raw.encoding == Encoding.UCS2 && raw.smartText == null)
    check("smart encoding makes them GSM-7", smart.encoding == Encoding.GSM7 && smart.smartText == "It's \"free\"")
}

private fun preview(sms: SmsClient) {
    sms.recordOptOut("+12025550199", OptOutAction.STOP, "called the office")
    val records = listOf(
        recipient("ok", "(202) 555-0100"),
        recipient("stopped", "+1 202 555 0199"),
        recipient("email-only", "+12025550101", kind = client("Email")),
        recipient("staff-no", "+12025550102", kind = RecipientKind.Staff(permittedSmsText = false)),
        recipient("no-mobile", "  "),
        recipient("bad-number", "12345"),
    )
    val preview = sms.preview(records, "Hi {first_name}, class is Monday.")
    for (item in preview.items) {
        when (val o = item.outcome) {
            is PreviewOutcome.Eligible -> println("preview: ${item.recordId}: ${o.number} \"${o.body}\" ${o.encoding} ${o.segments}")
            is PreviewOutcome.Blocked -> println("preview: ${item.recordId}: ${o.reasonCode}")
        }
    }
    check(
        "every skip reason has its code",
        blocked(preview) == mapOf(
            "stopped" to "opted_out",
            "email-only" to "client_not_permitted",
            "staff-no" to "staff_not_permitted",
            "no-mobile" to "no_mobile",
            "bad-number" to "invalid_number",
        ),
    )
    check(
        "every skip reason has words the office reads",
        preview.items.all { (it.outcome as? PreviewOutcome.Blocked)?.reason?.isNotBlank() ?: true },
    )
    val t = preview.totals
    println("preview: totals: records=${t.records} texts=${t.texts} skipped=${t.skipped} units=${t.messageUnits} cost=${t.estimatedCost}")
    check("preview totals", t.records == 6uL && t.texts == 1uL && t.skipped == 5uL && t.estimatedCost == "0.0083 USD")
}

private fun sendStopSend(sms: SmsClient) {
    val shared = "+12025550150"
    val records = listOf(
        recipient("ann", "+12025550110"),
        recipient("bob", shared),
        recipient("cid", shared), // bob's parent: the same mobile
        recipient("dee", "+12025550111"),
        recipient("eve", "+15005550009"), // the simulator's number that cannot receive SMS
    )
    val recorder = Recorder()
    var caller: Thread? = null
    var first: uniffi.sms_ffi.CampaignReport? = null
    var thrown: Throwable? = null
    // A thread of its own, to show "the calling thread" is not simply the main thread.
    val worker = Thread {
        caller = Thread.currentThread()
        try {
            CancelHandle().use { cancel ->
                first = sms.send("term-1", records, "Hi {first_name}, class is Monday.", cancel, recorder)
            }
        } catch (e: Throwable) {
            thrown = e
        }
    }
    worker.start()
    worker.join(20_000)
    check("send returns (${thrown ?: "no exception"})", !worker.isAlive && thrown == null && first != null)
    val report = first ?: return
    val last = recorder.progress.lastOrNull()
    println("send: final progress: sent=${last?.sent} failed=${last?.failed} skipped=${last?.skipped} remaining=${last?.remaining}")
    check("the listener was called", recorder.progress.isNotEmpty())
    check("the listener was called on the thread that called send only", recorder.threads == setOf(caller))
    check("the final progress matches the report", last?.sent == report.totals.sent && last?.failed == report.totals.failed)
    println("send: " + report.records.joinToString(" ") { "${it.recordId}=${it.status}" + (it.reasonCode?.let { c -> "($c)" } ?: "") })
    check(
        "send: four sent, eve failed, complete",
        report.complete && report.totals.sent == 4uL && report.totals.failed == 1uL &&
            report.records.single { it.recordId == "eve" }.status == RecordStatus.FAILED,
    )
    check("sent records carry a provider id", report.records.filter { it.status == RecordStatus.SENT }.all { !it.providerId.isNullOrEmpty() })

    val inbound = sms.handleInbound("(202) 555-0150", "STOP")
    println("inbound: STOP -> ${inbound.action} change=${inbound.change?.action} ${inbound.change?.number}")
    check("STOP is an opt-out, recorded", inbound.action == ReplyAction.OPT_OUT && inbound.change?.number == shared)
    check("the reply is TwiML", inbound.reply.contains("<Response"))

    val state = sms.optOutState(shared)
    println("optOutState: opted out=${state.optedOut} history=${state.history.map { "${it.action}/${it.source}" }}")
    check("the number is opted out since the STOP", state.optedOut && state.since != null && state.history.size == 1)
    check("another number is not", !sms.optOutState("+12025550110").optedOut)

    val second = sms.send("term-2", records.take(4), "Class moved to Tuesday.")
    println("second send: " + second.records.joinToString(" ") { "${it.recordId}=${it.status}" + (it.reasonCode?.let { c -> "($c)" } ?: "") })
    check(
        "both records of the shared number are blocked as opted_out",
        listOf("bob", "cid").all { id ->
            second.records.single { it.recordId == id }.let { it.status == RecordStatus.NOT_SENT && it.reasonCode == "opted_out" }
        },
    )
    check("the others are sent", second.totals.sent == 2uL && second.totals.skipped == 2uL && second.complete)
}

private fun errors(sms: SmsClient, dir: Path) {
    val e = expectSmsException("a campaign id with a space") {
        sms.send("spring term", listOf(recipient("ann", "+12025550110")), "Hi")
    } ?: return
    println("error: ${e::class.simpleName}: ${e.message}")
    check("it is SmsException.InvalidInput", e is SmsException.InvalidInput)
    check(
        "its message is the readable text",
        e.message == "campaign \"spring term\": use letters, digits, '-' and '_' only",
    )
    check("nothing was stored", "spring term" !in sms.campaigns() && sms.campaigns() == listOf("term-1", "term-2"))

    val bad = expectSmsException("an unknown region") {
        SmsClient(SmsConfig(database = dir.resolve("never.db").toString(), provider = ProviderConfig.Simulator, region = "Atlantis")).close()
    } ?: return
    println("error: ${bad::class.simpleName}")
    check("a bad configuration is SmsException.Configuration", bad is SmsException.Configuration && bad.message!!.contains("Atlantis"))

    // A host that logs its configuration must not log the token: toString() of these two comes
    // from the library's Rust Display, not from the data class's every-field default.
    val twilio = ProviderConfig.Twilio(accountSid = "AC" + "0".repeat(32), authToken = "s3cr3t-token", fromNumber = "+15005550006")
    val shown = twilio.toString() + " " + SmsConfig(database = "x.db", provider = twilio, webhookAuthToken = "hook-s3cr3t").toString()
    check("printing a Twilio configuration never shows a token", "s3cr3t" !in shown && "***" in shown && "+15005550006" in shown)
}

private fun hostStore(dir: Path) {
    val store = HostStore()
    val config = SmsConfig(database = dir.resolve("campaigns.db").toString(), provider = ProviderConfig.Simulator, ratePerSecond = 0.0)
    SmsClient.withOptOutStore(config, store).use { sms ->
        val inbound = sms.handleInbound("+12025550160", "stop")
        println("host store: ${inbound.action}, stored ${store.changes.map { "${it.number} ${it.action} ${it.source} \"${it.body}\"" }}")
        check("the host's store received the STOP", store.changes.size == 1 && store.changes[0].number == "+12025550160" && store.changes[0].action == OptOutAction.STOP)
        check("optOutState reads it back", sms.optOutState("+12025550160").optedOut)
        val preview = sms.preview(listOf(recipient("fay", "+12025550160"), recipient("gus", "+12025550161")), "Hi")
        println("host store: preview: ${blocked(preview)}")
        check("preview blocks the number the host stored", blocked(preview) == mapOf("fay" to "opted_out") && preview.totals.texts == 1uL)
    }
}

private fun brokenListener(sms: SmsClient) {
    val records = (0 until 20).map { recipient("p$it", "+1202555%04d".format(200 + it)) }
    val e = expectSmsException("a listener that throws") {
        sms.send("boom", records, "Hi {first_name}", progress = Broken { IllegalStateException("listener bug 42") })
    } ?: return
    // Any other exception than HostException arrives with its Kotlin stack trace after the
    // first line (uniffi's way): print the first line only.
    println("broken listener: ${e::class.simpleName}: ${e.message?.lines()?.first()}")
    check("a listener that throws is SmsException.HostCallbackFailed", e is SmsException.HostCallbackFailed)
    check("its message names the listener and the Kotlin exception", e.message!!.contains("progress listener") && e.message!!.contains("listener bug 42"))

    val before = sms.report("boom").records.filter { it.providerId != null }.associate { it.recordId to it.providerId }
    val final = sms.resume("boom")
    println("broken listener: resume: complete=${final.complete} sent=${final.totals.sent}")
    check("resume completes the campaign", final.complete && final.totals.sent == 20uL)
    check(
        "records sent before the failure keep their ids (nobody texted twice)",
        final.records.filter { it.recordId in before }.associate { it.recordId to it.providerId } == before,
    )

    // A listener that fails the documented way: its reason is the message, word for word.
    val failed = expectSmsException("a listener that throws HostException.Failed") {
        sms.send("boom-2", records, "Hi", progress = Broken { HostException.Failed("the host's database is down") })
    } ?: return
    // The rest of the message says how many texts went out before the run stopped (it varies).
    println("failing listener: ${failed::class.simpleName}: ${failed.message?.substringBefore(';')}")
    check(
        "HostException.Failed arrives as HostCallbackFailed with its reason, and what to resume",
        failed is SmsException.HostCallbackFailed &&
            failed.message!!.startsWith("the host's progress listener raised: the host's database is down;") &&
            failed.message!!.contains("resume campaign boom-2"),
    )
    check("resume completes that campaign too", sms.resume("boom-2").let { it.complete && it.totals.sent == 20uL })

    // A listener that calls the client back is refused, not a deadlock.
    var refused: SmsException? = null
    val reentrant = object : ProgressListener {
        override fun onProgress(progress: SendProgress) {
            if (refused == null) {
                try {
                    sms.report("boom")
                } catch (e: SmsException) {
                    refused = e
                }
            }
        }

        override fun onWarning(warning: String) {}
    }
    val again = sms.send("again", records.take(2), "Hi", progress = reentrant)
    println("re-entrant listener: ${refused?.let { it::class.simpleName }}, send complete=${again.complete}")
    check("calling the client from its listener is SmsException.Reentrant", refused is SmsException.Reentrant && again.complete)
}

fun main() {
    val dir = Files.createTempDirectory("sms-kotlin-")
    try {
        segments()
        // Quiet hours ignored: this output must not depend on the hour the check runs at.
        val config = SmsConfig(database = dir.resolve("sms.db").toString(), provider = ProviderConfig.Simulator, ratePerSecond = 0.0, ignoreQuietHours = true)
        SmsClient(config).use { sms ->
            preview(sms)
            sendStopSend(sms)
            errors(sms, dir)
            brokenListener(sms)
        }
        hostStore(dir)
    } catch (e: Throwable) {
        println("FAILED: unexpected ${e::class.qualifiedName}: ${e.message}")
        failures++
    } finally {
        dir.toFile().deleteRecursively()
    }
    if (failures > 0) {
        println("$failures check(s) failed")
        exitProcess(1)
    }
    println("all checks passed")
    exitProcess(0)
}
