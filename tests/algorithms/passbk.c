/*
 * passbk.c - implements the pass-through backend of passbk.h: one
 * forwarding function per backend member.
 */
#include <stddef.h>

#include "passbk.h"

static struct passbk *pb(void *impl) { return impl; }

#define FWD(name, ret, args, call) \
	static ret p_##name args { struct passbk *w = pb(impl); return w->in.ops->name call; }

FWD(npages, uint64_t, (void *impl), (w->in.impl))
FWD(nnodes, uint32_t, (void *impl), (w->in.impl))
FWD(nguests, uint32_t, (void *impl), (w->in.impl))
FWD(page_size, uint32_t, (void *impl), (w->in.impl))
FWD(zero_checksum, uint32_t, (void *impl), (w->in.impl))
FWD(checksum, uint32_t, (void *impl, bk_page p), (w->in.impl, p))
FWD(checksum_uncounted, uint32_t, (void *impl, bk_page p), (w->in.impl, p))
FWD(compare, int, (void *impl, bk_page a, bk_page b), (w->in.impl, a, b))
FWD(compare_frame, int, (void *impl, bk_page a, bk_frame f), (w->in.impl, a, f))
FWD(merge_pages, int, (void *impl, bk_page p, bk_page k, bk_frame *o), (w->in.impl, p, k, o))
FWD(merge_frame, int, (void *impl, bk_page p, bk_frame f), (w->in.impl, p, f))
FWD(merge_zero, int, (void *impl, bk_page p), (w->in.impl, p))
FWD(unmerge, int, (void *impl, bk_page p), (w->in.impl, p))
FWD(frame_mappers, uint32_t, (void *impl, bk_frame f), (w->in.impl, f))
FWD(frame_node, uint32_t, (void *impl, bk_frame f), (w->in.impl, f))
FWD(content, struct sp_fp, (void *impl, bk_page p), (w->in.impl, p))
FWD(written, int, (void *impl, bk_page p), (w->in.impl, p))

static void p_page_info(void *impl, bk_page p, struct bk_page_info *out)
{
	struct passbk *w = pb(impl);

	w->in.ops->page_info(w->in.impl, p, out);
}

static void p_account(void *impl, enum bk_cost what, uint64_t n)
{
	struct passbk *w = pb(impl);

	w->in.ops->account(w->in.impl, what, n);
}

void passbk_init(struct passbk *w, struct backend in)
{
	w->in = in;
	w->ops = (struct backend_ops){
		.npages = p_npages, .nnodes = p_nnodes, .nguests = p_nguests,
		.page_size = p_page_size, .zero_checksum = p_zero_checksum,
		.page_info = p_page_info, .checksum = p_checksum, .compare = p_compare,
		.compare_frame = p_compare_frame, .merge_pages = p_merge_pages,
		.merge_frame = p_merge_frame, .merge_zero = p_merge_zero, .unmerge = p_unmerge,
		.frame_mappers = p_frame_mappers, .frame_node = p_frame_node, .account = p_account,
		.content = in.ops->content ? p_content : NULL,
		.checksum_uncounted = in.ops->checksum_uncounted ? p_checksum_uncounted : NULL,
		.written = in.ops->written ? p_written : NULL,
	};
}
