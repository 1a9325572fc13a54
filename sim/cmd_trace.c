/*
 * cmd_trace.c - `sim trace gen|info|check|export`: make and inspect traces
 * (`record` and `import` live in cmd_record.c).
 */
#include <csv.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "cli.h"
#include "fpcount.h"
#include "gen.h"
#include "sim.h"
#include "trace.h"

static bool want_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	}
	return false;
}

/* ---- gen -------------------------------------------------------------- */

static void gen_usage(FILE *f)
{
	struct trace_gen_params d;

	trace_gen_defaults(&d);
	fprintf(f,
		"usage: sim trace gen -o FILE [options]\n"
		"\n"
		"Writes a synthetic trace.  The same options and seed give the same bytes.\n"
		"\n"
		"  -o, --output FILE          trace to write (replaced only when complete)\n"
		"  --guests N                 guests (default %u)\n"
		"  --pages N                  pages per guest (default %llu)\n"
		"  --snapshots N              snapshots, the first at time 0 (default %u)\n"
		"  --interval-ms N            time between snapshots (default %llu)\n"
		"  --shared-fraction F        fraction of non-zero pages with content shared across\n"
		"                             guests, popularity Zipf-distributed (default %g)\n"
		"  --shared-contents N        distinct shared contents (default pages/16)\n"
		"  --zipf S                   Zipf exponent of shared-content popularity (default %g)\n"
		"  --zero-fraction F          fraction of zero-filled pages (default %g)\n"
		"  --write-rate F             probability a volatile page is rewritten per interval (default %g)\n"
		"  --volatile-fraction F      fraction of pages that are ever rewritten (default %g)\n"
		"  --huge-fraction F          fraction of 2 MiB regions on huge pages (default %g)\n"
		"  --nodes N                  NUMA nodes; guest g on node g %% N (default %u)\n"
		"  --domains N                security domains; guest g in domain g %% N (default %u)\n"
		"  --seed N                   random seed (default %llu)\n",
		d.guests, (unsigned long long)d.pages, d.snapshots, (unsigned long long)d.interval_ms,
		d.shared_fraction, d.zipf_s, d.zero_fraction, d.write_rate, d.volatile_fraction,
		d.huge_fraction, d.nodes, d.domains, (unsigned long long)d.seed);
}

static void gen_progress(void *arg, uint64_t done, uint64_t total)
{
	char detail[64];

	snprintf(detail, sizeof(detail), "snapshot %llu/%llu", (unsigned long long)done,
		 (unsigned long long)total);
	cli_progress_update(arg, (double)done / (double)total, detail);
}

static int cmd_gen(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "guests", required_argument, NULL, 'g' },
		{ "pages", required_argument, NULL, 'p' },
		{ "snapshots", required_argument, NULL, 's' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "shared-fraction", required_argument, NULL, 'f' },
		{ "shared-contents", required_argument, NULL, 'k' },
		{ "zipf", required_argument, NULL, 'z' },
		{ "zero-fraction", required_argument, NULL, '0' },
		{ "write-rate", required_argument, NULL, 'w' },
		{ "volatile-fraction", required_argument, NULL, 'v' },
		{ "huge-fraction", required_argument, NULL, 'H' },
		{ "nodes", required_argument, NULL, 'n' },
		{ "domains", required_argument, NULL, 'D' },
		{ "seed", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct trace_gen_params p;
	struct sp_err err = { 0 };
	struct cli_progress prog;
	const char *out = NULL;
	uint64_t u;
	int c, li, rc;
	bool ok;

	trace_gen_defaults(&p);
	optind = 1;
	opterr = 0;
	while ((li = -1, c = getopt_long(argc, argv, ":o:h", opts, &li)) != -1) {
		ok = true;
		switch (c) {
		case 'o': out = optarg; break;
		case 'g': ok = cli_parse_u64(optarg, &u) && u <= UINT32_MAX; p.guests = (uint32_t)u; break;
		case 'p': ok = cli_parse_u64(optarg, &p.pages); break;
		case 's': ok = cli_parse_u64(optarg, &u) && u <= UINT32_MAX; p.snapshots = (uint32_t)u; break;
		case 'i': ok = cli_parse_u64(optarg, &p.interval_ms); break;
		case 'f': ok = cli_parse_double(optarg, &p.shared_fraction); break;
		case 'k': ok = cli_parse_u64(optarg, &p.shared_contents); break;
		case 'z': ok = cli_parse_double(optarg, &p.zipf_s); break;
		case '0': ok = cli_parse_double(optarg, &p.zero_fraction); break;
		case 'w': ok = cli_parse_double(optarg, &p.write_rate); break;
		case 'v': ok = cli_parse_double(optarg, &p.volatile_fraction); break;
		case 'H': ok = cli_parse_double(optarg, &p.huge_fraction); break;
		case 'n': ok = cli_parse_u64(optarg, &u) && u <= UINT32_MAX; p.nodes = (uint32_t)u; break;
		case 'D': ok = cli_parse_u64(optarg, &u) && u <= UINT32_MAX; p.domains = (uint32_t)u; break;
		case 'r': ok = cli_parse_u64(optarg, &p.seed); break;
		case 'h': gen_usage(stdout); return EXIT_OK;
		case ':': return cli_usage_error("trace gen", "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error("trace gen", "unknown option '%s'", argv[optind - 1]);
		}
		if (!ok)
			return cli_usage_error("trace gen", "invalid value '%s' for --%s", optarg,
					       li >= 0 ? opts[li].name : "o");
	}
	if (optind < argc)
		return cli_usage_error("trace gen", "unexpected argument '%s'", argv[optind]);
	if (!out)
		return cli_usage_error("trace gen", "-o FILE is required");
	if (trace_gen_check(&p, &err) < 0)
		return cli_fail(&err);
	cli_progress_init(&prog, "generating");
	rc = trace_gen_write(&p, out, gen_progress, &prog, &err);
	cli_progress_done(&prog);
	if (rc < 0)
		return cli_fail(&err);
	return EXIT_OK;
}

/* ---- check ------------------------------------------------------------ */

static int cmd_check(int argc, char **argv)
{
	struct sp_err err = { 0 };
	uint32_t snaps;
	uint64_t records;

	if (want_help(argc, argv)) {
		puts("usage: sim trace check FILE\n\nReads and validates the whole trace (every chunk checksum, every record);\n"
		     "exits 0 only if it is sound, else 3 with the byte offset of the fault.");
		return EXIT_OK;
	}
	if (argc != 2)
		return cli_usage_error("trace check", "expected one FILE");
	if (trace_check(argv[1], &snaps, &records, &err) < 0)
		return cli_fail(&err);
	printf("%s: ok, %u snapshots, %llu page records\n", argv[1], snaps,
	       (unsigned long long)records);
	return EXIT_OK;
}

/* ---- info ------------------------------------------------------------- */

/* Content per page, to count present, zero and duplicate pages per snapshot. */
struct census {
	struct fpcount contents;  /* every present page, zero pages under fp {0,0} */
	struct sp_fp *fp;
	uint8_t *present;
	uint64_t *base;
	uint64_t npresent, nzero, nhuge;
	uint8_t *huge;
	uint8_t *zero;
	uint16_t *node;
};

static int census_init(struct census *c, const struct trace_header *h, struct sp_err *err)
{
	uint64_t n = trace_header_total_pages(h), b = 0;

	memset(c, 0, sizeof(*c));
	c->fp = calloc(n, sizeof(*c->fp));
	c->present = calloc(n, 1);
	c->huge = calloc(n, 1);
	c->zero = calloc(n, 1);
	c->node = calloc(n, sizeof(*c->node));
	c->base = calloc(h->nguests, sizeof(*c->base));
	if (!c->fp || !c->present || !c->huge || !c->zero || !c->node || !c->base ||
	    fpcount_init(&c->contents, 1024) < 0)
		return sp_err_set(err, SP_ENOMEM, "out of memory for %llu pages", (unsigned long long)n);
	for (uint32_t g = 0; g < h->nguests; g++) {
		c->base[g] = b;
		b += h->guests[g].pages;
	}
	return 0;
}

static void census_release(struct census *c)
{
	fpcount_release(&c->contents);
	free(c->fp);
	free(c->present);
	free(c->huge);
	free(c->zero);
	free(c->node);
	free(c->base);
}

static int census_apply(struct census *c, const struct trace_record *rec, struct sp_err *err)
{
	uint64_t i = c->base[rec->guest] + rec->page;

	if (c->present[i]) {
		fpcount_remove(&c->contents, c->fp[i], 0);
		c->npresent--;
		c->nzero -= c->zero[i];
		c->nhuge -= c->huge[i];
	}
	c->present[i] = rec->flags & TRACE_PRESENT ? 1 : 0;
	c->zero[i] = rec->flags & TRACE_ZERO ? 1 : 0;
	c->huge[i] = rec->flags & TRACE_HUGE ? 1 : 0;
	c->fp[i] = rec->fp;
	c->node[i] = rec->node;
	if (c->present[i]) {
		if (fpcount_add(&c->contents, rec->fp, 0) < 0)
			return sp_err_set(err, SP_ENOMEM, "out of memory");
		c->npresent++;
		c->nzero += c->zero[i];
		c->nhuge += c->huge[i];
	}
	return 0;
}

static int cmd_info(int argc, char **argv)
{
	struct sp_err err = { 0 };
	struct trace_reader *r;
	const struct trace_header *h;
	struct trace_snapshot s;
	struct trace_record rec;
	struct census c;
	int rc;

	if (want_help(argc, argv)) {
		puts("usage: sim trace info FILE\n\nPrints the trace's header and guests, then per snapshot: time, records,\n"
		     "present, zero, huge, distinct contents and duplicate pages (present - distinct).");
		return EXIT_OK;
	}
	if (argc != 2)
		return cli_usage_error("trace info", "expected one FILE");
	if (trace_reader_open(&r, argv[1], &err) < 0)
		return cli_fail(&err);
	h = trace_reader_header(r);
	printf("trace        %s\n", argv[1]);
	printf("description  %s\n", h->desc[0] ? h->desc : "(none)");
	printf("page size    %u\n", h->page_size);
	printf("fingerprint  %s, 128 bits%s%s\n",
	       h->fp_algo == TRACE_FP_XXH3_128 ? "XXH3-128 of the page" : "synthetic",
	       h->flags & TRACE_F_KEYED ? ", keyed with a secret salt" : "",
	       h->flags & TRACE_F_FUZZY ? ", fuzzy snapshots" : "");
	printf("guests       %u, %llu pages (%.1f MiB)\n", h->nguests,
	       (unsigned long long)trace_header_total_pages(h),
	       (double)trace_header_total_pages(h) * h->page_size / (1 << 20));
	for (uint32_t g = 0; g < h->nguests; g++)
		printf("  %-20s node %-3u domain %-4u %llu pages\n", h->guests[g].name, h->guests[g].node,
		       h->guests[g].domain, (unsigned long long)h->guests[g].pages);
	rc = census_init(&c, h, &err);
	if (rc == 0)
		printf("%8s %10s %10s %10s %10s %10s %10s %10s\n", "snapshot", "time_ms", "records",
		       "present", "zero", "huge", "distinct", "duplicate");
	while (rc == 0 && (rc = trace_reader_next_snapshot(r, &s, &err)) > 0) {
		while ((rc = trace_reader_next_record(r, &rec, &err)) > 0) {
			rc = census_apply(&c, &rec, &err);
			if (rc < 0)
				break;
		}
		if (rc < 0)
			break;
		printf("%8u %10llu %10llu %10llu %10llu %10llu %10llu %10llu\n", s.index,
		       (unsigned long long)s.time_ms, (unsigned long long)s.records,
		       (unsigned long long)c.npresent, (unsigned long long)c.nzero,
		       (unsigned long long)c.nhuge, (unsigned long long)fpcount_distinct(&c.contents),
		       (unsigned long long)fpcount_duplicates(&c.contents));
	}
	census_release(&c);
	trace_reader_close(r);
	if (rc < 0)
		return cli_fail(&err);
	return EXIT_OK;
}

/* ---- export ----------------------------------------------------------- */

static void put_field(FILE *f, const char *s)
{
	if (strpbrk(s, ",\"\r\n"))
		csv_fwrite(f, s, strlen(s));
	else
		fputs(s, f);
}

static int cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "csv", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sp_err err = { 0 };
	struct trace_reader *r;
	const struct trace_header *h;
	struct trace_snapshot s;
	struct trace_record rec;
	struct census c;
	struct atomic_file af;
	struct cli_progress prog;
	const char *out = NULL, *in;
	int ch, rc;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ch == 'o')
			out = optarg;
		else if (ch == 'h') {
			puts("usage: sim trace export FILE --csv OUT\n\nWrites one CSV row per present page per snapshot:\n"
			     "snapshot,time_ms,guest,page,fingerprint,zero,node,huge (fingerprint in hex,\n"
			     "high word first; zero pages have fingerprint 0).");
			return EXIT_OK;
		} else
			return cli_usage_error("trace export", "bad option '%s'", argv[optind - 1]);
	}
	if (optind != argc - 1 || !out)
		return cli_usage_error("trace export", "expected FILE and --csv OUT");
	in = argv[optind];
	if (trace_reader_open(&r, in, &err) < 0)
		return cli_fail(&err);
	h = trace_reader_header(r);
	rc = census_init(&c, h, &err);
	if (rc == 0)
		rc = atomic_file_open(&af, out, 0644, &err);
	if (rc < 0) {
		census_release(&c);
		trace_reader_close(r);
		return cli_fail(&err);
	}
	fputs("snapshot,time_ms,guest,page,fingerprint,zero,node,huge\n", af.f);
	cli_progress_init(&prog, "exporting");
	while ((rc = trace_reader_next_snapshot(r, &s, &err)) > 0) {
		uint64_t i = 0;

		while ((rc = trace_reader_next_record(r, &rec, &err)) > 0) {
			rc = census_apply(&c, &rec, &err);
			if (rc < 0)
				break;
		}
		if (rc < 0)
			break;
		for (uint32_t g = 0; g < h->nguests; g++) {
			for (uint64_t p = 0; p < h->guests[g].pages; p++, i++) {
				if (!c.present[i])
					continue;
				fprintf(af.f, "%u,%llu,", s.index, (unsigned long long)s.time_ms);
				put_field(af.f, h->guests[g].name);
				fprintf(af.f, ",%llu,%016llx%016llx,%u,%u,%u\n", (unsigned long long)p,
					(unsigned long long)c.fp[i].hi, (unsigned long long)c.fp[i].lo,
					c.zero[i], c.node[i], c.huge[i]);
			}
		}
		cli_progress_update(&prog, (double)trace_reader_offset(r) / (double)trace_reader_size(r), NULL);
	}
	cli_progress_done(&prog);
	census_release(&c);
	trace_reader_close(r);
	if (rc == 0)
		rc = atomic_file_commit(&af, &err);
	else
		atomic_file_abort(&af);
	if (rc < 0)
		return cli_fail(&err);
	return EXIT_OK;
}

/* ---- dispatch --------------------------------------------------------- */

const struct cli_command cli_trace_verbs[] = {
	{ "gen", "-o FILE [options]: write a synthetic trace", cmd_gen },
	{ "info", "FILE: header, guests and per-snapshot counts", cmd_info },
	{ "check", "FILE: validate the whole file (exit 0 only if sound)", cmd_check },
	{ "export", "FILE --csv OUT: one CSV row per present page per snapshot", cmd_export },
	{ "record", "-o FILE (--pid PID... | --qemu): snapshots of live memory (root)",
	  cmd_trace_record },
	{ "import", "-o FILE VMCORE...: QEMU ELF memory dumps into a trace", cmd_trace_import },
	{ NULL, NULL, NULL },
};

int cmd_trace(int argc, char **argv)
{
	const struct cli_command *c;
	char names[128];

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		FILE *f = argc < 2 ? stderr : stdout;

		fputs("usage: sim trace VERB ...  ('sim trace VERB --help' describes one)\n", f);
		cli_command_list(cli_trace_verbs, "  ", 7, f);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	c = cli_command_find(cli_trace_verbs, argv[1]);
	if (c)
		return c->main(argc - 1, argv + 1);
	cli_command_names(cli_trace_verbs, names, sizeof(names));
	fprintf(stderr, "sim: unknown trace verb '%s' (verbs: %s; see 'sim trace --help')\n", argv[1], names);
	return EXIT_USAGE;
}
