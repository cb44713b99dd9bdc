//! The wire walker allocates nothing: not to count, not to look up a few attribute keys per
//! item. Counted with a global allocator that counts this thread's allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use otelspool::pipeline::wire::{CountOnly, ItemVisitor, walk};
use otelspool::pipeline::{Decoded, Signal};
use otelspool_testkit::loadgen::records::JobRecords;
use prost::Message;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// Finds how many items carry a job id, without keeping anything.
struct WithJob {
    keys: Vec<Box<str>>,
    items: u64,
}

impl ItemVisitor for WithJob {
    fn keys(&self) -> &[Box<str>] {
        &self.keys
    }

    fn item(&mut self, values: &[Option<&str>]) {
        if values[0].is_some() {
            self.items += 1;
        }
    }

    fn restart(&mut self) {
        self.items = 0;
    }
}

/// Scenario: a 100-record request as the load generator builds it, walked with `CountOnly`
/// and with a visitor asking for `emerge.job_id` and `emerge.workflow_id`.
/// Guarantees: both walks count 100 records (the visitor sees a job id on each) and make no
/// allocation at all (while prost's decode of the same bytes, counted the same way, makes
/// hundreds).
#[test]
fn walking_a_request_allocates_nothing() {
    let body = JobRecords::new("alloc", 3, 300)
        .next_batch(100)
        .0
        .encode_to_vec();
    let mut visitor = WithJob {
        keys: vec!["emerge.job_id".into(), "emerge.workflow_id".into()],
        items: 0,
    };
    let decoding = allocations_during(|| {
        Decoded::from_protobuf(Signal::Logs, &body).expect("valid");
    });
    assert!(decoding > 100, "{decoding}");
    let mut counted = 0;
    let n = allocations_during(|| {
        counted = walk(Signal::Logs, &body, &mut CountOnly).expect("valid");
    });
    assert_eq!(counted, 100);
    assert_eq!(n, 0, "allocations while counting");
    let n = allocations_during(|| {
        counted = walk(Signal::Logs, &body, &mut visitor).expect("valid");
    });
    assert_eq!((counted, visitor.items), (100, 100));
    assert_eq!(n, 0, "allocations while looking up keys");
}
