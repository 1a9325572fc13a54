/*
 * uffd_track.h - the kernel ABI for write tracking that Debian 12's headers
 * (linux-libc-dev 6.1) predate: userfaultfd's asynchronous write protection
 * (UFFD_FEATURE_WP_ASYNC, Linux 6.7), the PAGEMAP_SCAN ioctl of
 * /proc/PID/pagemap (Linux 6.7), and UFFDIO_MOVE (Linux 6.8), with which a
 * merge freezes a page.  Private to real/live.c.
 *
 * The values are the kernel's uapi (include/uapi/linux/userfaultfd.h and
 * include/uapi/linux/fs.h of Linux 6.7-6.18, checked against Debian's
 * linux-source-6.12); each is defined only when the installed headers lack
 * it, so newer headers win.  Whether the running kernel has them is a
 * runtime question: live.c asks UFFDIO_API for the feature and tries one
 * PAGEMAP_SCAN, and falls back to hashing every visit when either fails.
 */
#ifndef SP_REAL_UFFD_TRACK_H
#define SP_REAL_UFFD_TRACK_H

#include <linux/fs.h>
#include <linux/types.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13) /* wp markers on unpopulated ptes */
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15) /* a write to a wp page is resolved by the kernel */
#endif

/* Moving a page between two addresses (UFFDIO_MOVE, Linux 6.8): the freeze of a merge (live.c). */
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif
#ifndef UFFDIO_MOVE
#define _UFFDIO_MOVE (0x05)
struct uffdio_move {
	__u64 dst;
	__u64 src;
	__u64 len;
	__u64 mode;  /* UFFDIO_MOVE_MODE_* */
	__s64 move;  /* out: bytes moved, or a negative errno */
};
#define UFFDIO_MOVE_MODE_DONTWAKE ((__u64)1 << 0)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((__u64)1 << 1)
#define UFFDIO_MOVE _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif

#ifndef PAGEMAP_SCAN
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)

/* Page categories (pm_scan_arg masks, page_region.categories). */
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PAGE_IS_HUGE (1 << 6)
#define PAGE_IS_SOFT_DIRTY (1 << 7)

/* One run of pages [start, end) with the same categories. */
struct page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};

#define PM_SCAN_WP_MATCHING (1 << 0)   /* write-protect the pages matched */
#define PM_SCAN_CHECK_WPASYNC (1 << 1) /* fail on a VMA without async write protection */

struct pm_scan_arg {
	__u64 size;                /* sizeof(struct pm_scan_arg) */
	__u64 flags;               /* PM_SCAN_* */
	__u64 start;               /* range [start, end) */
	__u64 end;
	__u64 walk_end;            /* out: where the walk stopped */
	__u64 vec;                 /* struct page_region array */
	__u64 vec_len;
	__u64 max_pages;           /* 0: no limit */
	__u64 category_inverted;   /* categories that match when 0 */
	__u64 category_mask;       /* every one of these must match */
	__u64 category_anyof_mask; /* at least one of these must match */
	__u64 return_mask;         /* categories reported */
};
#endif

#endif
