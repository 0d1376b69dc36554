//! `segment::count` allocates nothing on the common path: it is called once per recipient
//! in previews. A counting allocator (per thread, so parallel tests do not interfere)
//! checks it on the kinds of messages the benchmark workload holds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sms_core::segment::{self, SegmentOptions};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// thread-local `Cell` with a const initialiser, so touching it never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn count_does_not_allocate_on_the_common_path() {
    // The counter works: analyze() builds vectors.
    let analyzed = allocations_during(|| {
        std::hint::black_box(segment::analyze("x", SegmentOptions::default()));
    });
    assert!(analyzed > 0);
    let texts = [
        "Reminder: pottery class starts Monday at 9am in Room 4. Reply STOP to opt out.".repeat(3),
        "Prices [20% off] {today} only ~ see you | bye".repeat(5),
        "\u{201C}Smart quotes\u{201D} \u{2014} and an ellipsis\u{2026} caf\u{e9}".repeat(4),
        "\u{412}\u{430}\u{448} \u{43a}\u{43e}\u{434}: 1234. \u{41d}\u{435} \u{441}\u{43e}\u{43e}\u{431}\u{449}\u{430}\u{439}\u{442}\u{435}.".repeat(6),
        "\u{60a8}\u{7684}\u{9a8c}\u{8bc1}\u{7801}\u{662f} 8841\u{3002}".repeat(12),
        "Great job \u{1F44D}\u{1F3FD} \u{1F1FA}\u{1F1F8} \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}".repeat(5),
        String::new(),
    ];
    for text in &texts {
        for smart_encoding in [false, true] {
            let options = SegmentOptions {
                smart_encoding,
                force_ucs2: false,
            };
            let mut result = None;
            let n = allocations_during(|| result = Some(segment::count(text, options)));
            assert_eq!(n, 0, "count({text:?}, smart {smart_encoding}) allocated");
            assert_eq!(result, Some(segment::count(text, options)));
        }
    }
}
