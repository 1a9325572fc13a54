/*
 * chunk.h - private to traces/: chunk framing constants and little-endian
 * encoding helpers shared by the reader and the writer.
 */
#ifndef SP_TRACE_CHUNK_H
#define SP_TRACE_CHUNK_H

#include <stdint.h>
#include <string.h>

#define TRACE_MAGIC "SPTRACE\0"
#define TRACE_MAGIC_LEN 8
#define CHUNK_HDR 8      /* type + length */
#define CHUNK_TRAILER 8  /* XXH64 */
#define CHUNK_MAX_PAYLOAD (16u << 20)
#define CHUNK_WRITE_TARGET (1u << 20)
#define SNAP_PAYLOAD 20
#define END_PAYLOAD 12    /* version 1 */
#define END_PAYLOAD_V2 20 /* version 2: + the SUMM chunk's offset */
#define SUMM_PREFIX 20    /* last_ms, contents, guest_count; then a byte per guest */
#define PAGE_PREFIX 16   /* guest, count, base */
#define RECORD_MAX (10 + 1 + 2 + 16)

#define FOURCC(a, b, c, d) \
	((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define CHUNK_HEAD FOURCC('H', 'E', 'A', 'D')
#define CHUNK_SNAP FOURCC('S', 'N', 'A', 'P')
#define CHUNK_PAGE FOURCC('P', 'A', 'G', 'E')
#define CHUNK_END FOURCC('E', 'N', 'D', ' ')
#define CHUNK_SUMM FOURCC('S', 'U', 'M', 'M')

/*
 * Which guests some snapshot records completely (FORMAT.md: SUMM), learnt
 * per PAGE chunk by the writer and the reader alike (summary.c).  The
 * records of a guest in one snapshot are distinct pages in range, so they
 * are all its pages iff as many.
 */
struct trace_wholes {
	uint64_t *snap_pages; /* per guest: records in the open snapshot */
	uint32_t *touched;    /* the guests with records in it, n */
	uint32_t n;
	uint8_t *complete;    /* per guest: some snapshot so far recorded every page */
};

struct trace_header;
int trace_wholes_init(struct trace_wholes *c, uint32_t nguests); /* 0, or -1: out of memory */
void trace_wholes_free(struct trace_wholes *c);
/* A PAGE chunk of count records of guest g in the open snapshot. */
static inline void trace_wholes_add(struct trace_wholes *c, uint32_t nguests, uint32_t g,
				    uint64_t count)
{
	if (c->snap_pages[g] == 0 && c->n < nguests) /* guests come in order within a snapshot */
		c->touched[c->n++] = g;
	c->snap_pages[g] += count;
}
/* The open snapshot ends. */
void trace_wholes_end(struct trace_wholes *c, const struct trace_header *h);

static inline void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static inline void chunk_name(uint32_t type, char out[5])
{
	for (int i = 0; i < 4; i++) {
		char c = (char)(type >> (8 * i));

		out[i] = (c >= 32 && c < 127) ? c : '?';
	}
	out[4] = '\0';
}

#endif
