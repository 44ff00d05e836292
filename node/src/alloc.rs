//! The node's memory allocator: mimalloc, told to keep the memory it frees.
//!
//! A node frees and reallocates the same amounts of memory every block: decoded
//! transactions, prepared signing bytes, write batches, gossip buffers. By default
//! mimalloc hands pages that fall empty back to the kernel after a delay (`purge`), and
//! the next block faults them in again, zeroed: in the 5-node cluster benchmark the
//! kernel's page clearing and faults took ~4% of all CPU and the nodes ~192 µs of CPU per
//! committed bill; with purging off, ~166 µs and ~16% more bills per second (ADR 0006).
//! The cost is that a node's resident memory stays at its high-water mark.

/// The global allocator of `ebill-node`.
pub type Allocator = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_t` (`mimalloc.h`); the `-sys`
/// crate does not name it. A test checks it against the option's documented default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Turns purging off: freed memory stays with the process for reuse. Call once, first
/// thing in `main`.
pub fn keep_freed_memory() {
    // SAFETY: `mi_option_set` takes two plain integers and writes one word of
    // mimalloc's option table; any option index and value are accepted (unknown
    // indices are ignored), so no input can make it misbehave.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_index_is_mimallocs() {
        // SAFETY: reads one word of the option table (see `keep_freed_memory`).
        #[allow(unsafe_code)]
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // mimalloc v3's default purge delay (options.c), the only option at 1000.
            assert_eq!(get(), 1000);
        }
        keep_freed_memory();
        assert_eq!(get(), -1);
    }
}
