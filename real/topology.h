/*
 * topology.h - the host's NUMA topology, from libnuma.
 */
#ifndef SP_REAL_TOPOLOGY_H
#define SP_REAL_TOPOLOGY_H

#include <stdint.h>

#include "sp_error.h"

struct real_topology {
	int nodes;           /* configured NUMA nodes (1 on a non-NUMA host) */
	int64_t mem_mb[64];  /* memory per node, MiB (first 64 nodes) */
};

/* 0, or SP_ENOTSUP when the kernel has no NUMA support at all. */
int real_topology_read(struct real_topology *out, struct sp_err *err);
/* The node of the page holding addr (faulting it in if needed), or a negative SP_E* code. */
int real_page_node(const void *addr, struct sp_err *err);

#endif
