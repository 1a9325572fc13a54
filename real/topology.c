/*
 * topology.c - reads the NUMA topology and a page's node with libnuma.
 * A host without NUMA support is reported as SP_ENOTSUP, never guessed.
 */
#define _GNU_SOURCE
#include "topology.h"

#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <string.h>

int real_topology_read(struct real_topology *out, struct sp_err *err)
{
	memset(out, 0, sizeof(*out));
	if (numa_available() < 0)
		return sp_err_set(err, SP_ENOTSUP, "this kernel has no NUMA support (numa_available failed)");
	out->nodes = numa_num_configured_nodes();
	for (int n = 0; n < out->nodes && n < 64; n++) {
		long long free_b;
		long long size = numa_node_size64(n, &free_b);

		out->mem_mb[n] = size < 0 ? 0 : size >> 20;
	}
	return 0;
}

int real_page_node(const void *addr, struct sp_err *err)
{
	void *pages[1] = { (void *)(uintptr_t)addr };
	int status[1] = { -1 };

	if (move_pages(0, 1, pages, NULL, status, 0) != 0)
		return sp_err_set(err, SP_ENOTSUP, "move_pages: %s", strerror(errno));
	if (status[0] < 0)
		return sp_err_set(err, SP_EINVAL, "page %p: %s", addr, strerror(-status[0]));
	return status[0];
}
