/*
 * kernel.c - implements the table of Linux KSM behaviours by version and the
 * `--kernel` parser (kernel.h).
 *
 * Every row below was checked against the kernel's own sources: Debian's
 * linux-source-6.1 (6.1.192) and linux-source-6.12 (6.12.117) packages for
 * the two ends, and the upstream commits (their mailing-list postings and
 * the stable trees' backports) for the release each change first shipped in.
 *
 *   version  behaviour (name)                 commit
 *   2.6.32   stable tree searched before the  31dbd01f3143 "ksm: Kernel SamePage Merging"
 *            checksum filter (until 6.10)
 *   6.4      general_profit                   d21077fbc2fc "mm: add new KSM process and sysfs knobs"
 *   6.6      ksm_zero_pages, counted in       e2942062e01d "ksm: count all zero pages placed by KSM",
 *            general_profit (ksm_zero_pages)  1a8e84305783 "ksm: consider KSM-placed zeropages when
 *                                             calculating KSM profit"
 *   6.6      pages_scanned                    b348b5fe2b5f "mm/ksm: add pages scanned metric"
 *   6.7      smart_scan (default on),         5e924ff54d08 "mm/ksm: add "smart" page scanning mode",
 *            pages_skipped (smart_scan)       e5a689912689 "mm/ksm: add pages_skipped metric"
 *   6.8      advisor_mode=scan-time (advisor) 4e5fa4f5eff6 "mm/ksm: add ksm advisor",
 *                                             66790e9a735b "mm/ksm: add sysfs knobs for advisor"
 *   6.10     pages_scanned counts every visit 730cdc2c72c6 "mm/ksm: fix ksm_pages_scanned accounting"
 *            (pages_scanned_per_visit)        (backported to 6.6.y and 6.9.y, June 2024)
 *   6.11     checksum filter before the       d58a361b0350 "mm/ksm: don't waste time searching
 *            stable tree (checksum_first)     stable tree for fast changing page"
 *   6.12     huge-page split maps zero-filled b1f202060afe "mm: remap unused subpages to shared
 *            subpages to the zero page        zeropage when splitting isolated thp"
 *            (thp_zero_remap)
 *   all      an unmapped page's rmap item and 31dbd01f3143 (get_next_rmap_item() frees the
 *            its tree entry stay until the    items the cursor passes; unchanged in 6.1,
 *            scan cursor passes it            6.12): not a row, every version does it
 *
 * What each means, as read in the sources:
 *  - Up to 6.10 cmp_and_merge_page() searches the stable tree first and only
 *    then compares the checksum with the one stored at the previous visit, so
 *    a page whose content is already a KSM page merges on its first visit
 *    (the stored checksum starts at 0); a page written between visits also
 *    merges if it matches a KSM page, and is copied back at its next write.
 *    From 6.11 a page that is not yet a KSM page is checksummed first (and
 *    offered to the zero page first); only a page with an unchanged checksum
 *    searches the stable tree.
 *  - Up to 6.9 ksm_do_scan() adds `scan_npages - npages` after its loop: a
 *    batch that visited all its pages adds pages_to_scan + 1 (the unsigned
 *    counter wraps past 0 in the loop test), a batch that ends at the end of a
 *    full scan adds nothing.  6.10 counts each visit.
 *  - 6.4-6.5: general_profit = pages_sharing * 4096 - 64 * rmap items; from
 *    6.6 ksm_zero_pages are credited too.  Before 6.6 a page mapped to the
 *    zero page by use_zero_pages is counted nowhere.
 *  - smart_scan defaults to 1 from its first release (the 6.7 documentation
 *    said "disabled"; the code, "Default to true at least temporarily",
 *    says 1).
 *  - From 6.12 __split_huge_page() remaps every zero-filled subpage of an
 *    anonymous huge page to the shared zero page (try_to_map_unused_to_
 *    zeropage(), mm/migrate.c), the subpage KSM is merging included: its
 *    merge then fails (write_protect_page() finds no pte mapping it), so it
 *    lands on the zero page by the split, counted in neither pages_sharing
 *    nor ksm_zero_pages.  Up to 6.11 a split leaves zero-filled subpages as
 *    ordinary pages that KSM may merge later.  Both checked on Debian's
 *    kernels in QEMU guests, full scan by full scan (tests/real/ksm_proof.sh,
 *    bench/README.md), with the first-visit merge of 6.1 and the counters
 *    each version has.  (A guest under 512 MiB of RAM boots with
 *    transparent huge pages off, hugepage_init(): the proof turns them on.)
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "kernel.h"

const struct algo_kernel_row algo_kernel_table[] = {
	{ 6, 4, AK_GENERAL_PROFIT, "general_profit", "d21077fbc2fc",
	  "the general_profit counter" },
	{ 6, 6, AK_KSM_ZERO_PAGES, "ksm_zero_pages", "e2942062e01d, 1a8e84305783",
	  "the ksm_zero_pages counter, credited in general_profit" },
	{ 6, 6, AK_PAGES_SCANNED, "pages_scanned", "b348b5fe2b5f", "the pages_scanned counter" },
	{ 6, 7, AK_SMART_SCAN, "smart_scan", "5e924ff54d08, e5a689912689",
	  "smart_scan (default 1) and the pages_skipped counter" },
	{ 6, 8, AK_ADVISOR, "advisor", "4e5fa4f5eff6, 66790e9a735b",
	  "advisor_mode=scan-time and the advisor_* tunables" },
	{ 6, 10, AK_PAGES_SCANNED_PER_VISIT, "pages_scanned_per_visit", "730cdc2c72c6",
	  "pages_scanned counts every visit (before: pages_to_scan + 1 per batch not ending a scan)" },
	{ 6, 11, AK_CHECKSUM_FIRST, "checksum_first", "d58a361b0350",
	  "the checksum filter before the stable tree search (before: a page merges with a KSM page on its first visit)" },
	{ 6, 12, AK_THP_ZERO_REMAP, "thp_zero_remap", "b1f202060afe",
	  "a huge-page split maps zero-filled subpages to the shared zero page" },
};
const size_t algo_kernel_rows = sizeof(algo_kernel_table) / sizeof(algo_kernel_table[0]);

/* KSM counters and tunables that not every supported version has. */
static const struct {
	const char *name;
	uint32_t feature;
} needs[] = {
	{ "general_profit", AK_GENERAL_PROFIT },
	{ "ksm_zero_pages", AK_KSM_ZERO_PAGES },
	{ "pages_scanned", AK_PAGES_SCANNED },
	{ "pages_skipped", AK_SMART_SCAN },
	{ "smart_scan", AK_SMART_SCAN },
	{ "advisor", AK_ADVISOR },
	{ "advisor_mode", AK_ADVISOR },
	{ "advisor_max_cpu", AK_ADVISOR },
	{ "advisor_min_pages_to_scan", AK_ADVISOR },
	{ "advisor_max_pages_to_scan", AK_ADVISOR },
	{ "advisor_target_scan_time", AK_ADVISOR },
};

static bool before(uint32_t maj, uint32_t min, uint32_t maj2, uint32_t min2)
{
	return maj < maj2 || (maj == maj2 && min < min2);
}

static uint32_t features_of(uint32_t major, uint32_t minor)
{
	uint32_t f = 0;

	for (size_t i = 0; i < algo_kernel_rows; i++) {
		if (!before(major, minor, algo_kernel_table[i].major, algo_kernel_table[i].minor))
			f |= algo_kernel_table[i].feature;
	}
	return f;
}

void algo_kernel_newest(struct algo_kernel *out)
{
	out->major = ALGO_KERNEL_NEWEST_MAJOR;
	out->minor = ALGO_KERNEL_NEWEST_MINOR;
	out->features = features_of(out->major, out->minor);
	out->overridden = 0;
}

const struct algo_kernel_row *algo_kernel_row_of(uint32_t feature)
{
	for (size_t i = 0; i < algo_kernel_rows; i++) {
		if (algo_kernel_table[i].feature == feature)
			return &algo_kernel_table[i];
	}
	return NULL;
}

static const struct algo_kernel_row *row_named(const char *name, size_t len)
{
	for (size_t i = 0; i < algo_kernel_rows; i++) {
		if (strlen(algo_kernel_table[i].name) == len &&
		    strncmp(algo_kernel_table[i].name, name, len) == 0)
			return &algo_kernel_table[i];
	}
	return NULL;
}

static void list_names(char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < algo_kernel_rows && off < len; i++) {
		int n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "",
				 algo_kernel_table[i].name);

		if (n < 0)
			break;
		off += (size_t)n;
	}
}

/* One override "name=0|1" of length len. */
static int parse_override(struct algo_kernel *k, const char *s, size_t len, struct sp_err *err)
{
	const char *eq = memchr(s, '=', len);
	const struct algo_kernel_row *row;
	char names[200];

	if (!eq || eq == s || (size_t)(eq - s) + 2 != len || (eq[1] != '0' && eq[1] != '1'))
		return sp_err_set(err, SP_EINVAL, "--kernel: '%.*s' is not behaviour=0 or behaviour=1",
				  (int)len, s);
	row = row_named(s, (size_t)(eq - s));
	if (!row) {
		list_names(names, sizeof(names));
		return sp_err_set(err, SP_EINVAL, "--kernel: no behaviour '%.*s'; valid: %s",
				  (int)(eq - s), s, names);
	}
	if (eq[1] == '1')
		k->features |= row->feature;
	else
		k->features &= ~row->feature;
	k->overridden |= row->feature;
	return 0;
}

int algo_kernel_parse(struct algo_kernel *out, const char *spec, struct sp_err *err)
{
	const char *p = spec, *comma;
	unsigned long major, minor;
	char *end;

	algo_kernel_newest(out);
	if (!isdigit((unsigned char)*p))
		return sp_err_set(err, SP_EINVAL,
				  "--kernel '%s': expected a version such as 6.1 or 6.1.0-28-amd64", spec);
	major = strtoul(p, &end, 10);
	if (*end != '.' || !isdigit((unsigned char)end[1]))
		return sp_err_set(err, SP_EINVAL,
				  "--kernel '%s': expected MAJOR.MINOR, such as 6.1 or 5.14", spec);
	minor = strtoul(end + 1, &end, 10);
	/* The rest of a uname release ("-28-amd64", ".0-427.el9.x86_64") up to a comma. */
	comma = strchr(end, ',');
	if (*end != '\0' && *end != ',' && *end != '.' && *end != '-' && *end != '+' && *end != '_')
		return sp_err_set(err, SP_EINVAL, "--kernel '%s': unexpected '%c' after the version",
				  spec, *end);
	if (major > 1000 || minor > 1000)
		return sp_err_set(err, SP_EINVAL, "--kernel '%s': no such version", spec);
	if (before((uint32_t)major, (uint32_t)minor, ALGO_KERNEL_OLDEST_MAJOR,
		   ALGO_KERNEL_OLDEST_MINOR))
		return sp_err_set(err, SP_EINVAL,
				  "--kernel %lu.%lu: the model covers Linux %d.%d (RHEL 9) and later",
				  major, minor, ALGO_KERNEL_OLDEST_MAJOR, ALGO_KERNEL_OLDEST_MINOR);
	out->major = (uint32_t)major;
	out->minor = (uint32_t)minor;
	out->features = features_of(out->major, out->minor);
	while (comma) {
		const char *item = comma + 1;
		int rc;

		comma = strchr(item, ',');
		rc = parse_override(out, item, comma ? (size_t)(comma - item) : strlen(item), err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int algo_kernel_running(struct algo_kernel *out, struct sp_err *err)
{
	struct utsname u;

	if (uname(&u) != 0)
		return sp_err_set(err, SP_ENOTSUP, "uname failed: cannot tell the running kernel");
	return algo_kernel_parse(out, u.release, err);
}

void algo_kernel_format(const struct algo_kernel *k, char *buf, size_t len)
{
	int off = snprintf(buf, len, "%u.%u", k->major, k->minor);

	for (size_t i = 0; i < algo_kernel_rows && off >= 0 && (size_t)off < len; i++) {
		const struct algo_kernel_row *r = &algo_kernel_table[i];

		if (k->overridden & r->feature)
			off += snprintf(buf + off, len - (size_t)off, ",%s=%d", r->name,
					(k->features & r->feature) != 0);
	}
}

void algo_kernel_describe(const struct algo_kernel *k, char *buf, size_t len)
{
	size_t off;
	int n = 0;

	algo_kernel_format(k, buf, len);
	off = strlen(buf);
	for (size_t i = 0; i < algo_kernel_rows && off < len; i++) {
		const struct algo_kernel_row *r = &algo_kernel_table[i];
		int w;

		if (k->features & r->feature)
			continue;
		w = snprintf(buf + off, len - off, "%s%s", n++ ? ", " : " (without ", r->name);
		if (w < 0)
			return;
		off += (size_t)w;
	}
	if (n && off < len)
		snprintf(buf + off, len - off, ")");
}

uint32_t algo_kernel_needs(const char *name)
{
	for (size_t i = 0; i < sizeof(needs) / sizeof(needs[0]); i++) {
		if (strcmp(needs[i].name, name) == 0)
			return needs[i].feature;
	}
	return 0;
}

bool algo_kernel_offers(const struct algo_kernel *k, const char *name, char *buf, size_t len)
{
	uint32_t f = algo_kernel_needs(name);
	const struct algo_kernel_row *row;
	char ver[96];

	if (!f || algo_kernel_has(k, f))
		return true;
	row = algo_kernel_row_of(f);
	algo_kernel_format(k, ver, sizeof(ver));
	if (buf && len)
		snprintf(buf, len, "Linux %s has no %s (added in %u.%u, %s; set it on its own with --kernel %u.%u,%s=1)",
			 ver, name, row->major, row->minor, row->commit, k->major, k->minor, row->name);
	return false;
}
