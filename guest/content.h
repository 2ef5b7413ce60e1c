/*
 * content.h - what a filled page holds, as pure functions of its index.
 *
 * Nothing here touches hardware, so verify can recompute any page body and
 * a host program can include this file to check the profiles (for example
 * how well LZ4 compresses them).
 *
 * A page that is not all-zero starts with a 16-byte stamp:
 *
 *   u32 magic "FRRY" | u32 page index | u32 generation | u32 checksum
 *
 * The body (bytes 16..4095) depends on index, profile and, by the rewrite
 * mode, the generation: the stamp changes each time the page is dirtied
 * (REWRITE_STAMP), and with it three 8-byte words at offsets of its own
 * (REWRITE_SPARSE) or the whole body (REWRITE_PAGE).
 *
 * A disk sector written by the disk workload has the same layout in 512
 * bytes, with its own magic:
 *
 *   u32 magic "FRDK" | u32 LBA | u32 generation | u32 checksum
 *
 * and a body (bytes 16..511) that depends on LBA, generation and profile
 * (the profile of a sector is content_profile() of its LBA).
 */
#ifndef FERRY_GUEST_CONTENT_H
#define FERRY_GUEST_CONTENT_H

#include <stdint.h>

#define PAGE_SIZE 4096u
#define STAMP_SIZE 16u
#define STAMP_MAGIC 0x59525246u  /* "FRRY" in memory order */
#define SECTOR_SIZE 512u
#define SECTOR_MAGIC 0x4B445246u /* "FRDK" in memory order */

enum profile { PROFILE_ZERO, PROFILE_TEXT, PROFILE_RANDOM, PROFILE_COUNT };

/*
 * What dirtying a page rewrites, besides its stamp:
 *  - STAMP: nothing; the body stays as filled.
 *  - SPARSE: SPARSE_SLOTS 8-byte words at offsets that depend on the page
 *    (one in each third of the page): a counter and two "list links",
 *    derived from the generation, over the body as filled. A few dozen
 *    bytes differ from one generation to the next, as when a program
 *    bumps a counter or relinks a list node in a page.
 *  - PAGE: the whole body, regenerated from a seed that mixes in the
 *    generation (zero-profile pages keep a zero body).
 * Generation 0 is "as filled" in every mode.
 */
enum rewrite { REWRITE_STAMP, REWRITE_SPARSE, REWRITE_PAGE };

#define SPARSE_SLOTS 3u
#define SPARSE_SLOT_SIZE 8u

struct stamp {
	uint32_t magic;
	uint32_t index;
	uint32_t gen;
	uint32_t csum;
};

/* A 32-bit mixing function; spreads consecutive indexes over all bits. */
uint32_t content_mix32(uint32_t x);

/*
 * Profile of page idx for a split of mix[PROFILE_*] percent (any sum > 0:
 * the shares are relative). A hash of the index decides, so each profile
 * is spread over the whole region rather than in bands.
 */
enum profile content_profile(uint32_t idx, const uint32_t mix[PROFILE_COUNT]);

/* Write the body of page idx: bytes STAMP_SIZE..PAGE_SIZE of page. */
void content_body(uint32_t idx, enum profile prof, uint8_t *page);

/*
 * Write the body of page idx as it is at generation gen under rewrite
 * mode rw: bytes STAMP_SIZE..PAGE_SIZE of page. With REWRITE_SPARSE and
 * gen >= 1 that is the filled body with content_sparse() over it.
 */
void content_page_body(uint32_t idx, enum profile prof, uint32_t gen,
		       enum rewrite rw, uint8_t *page);

/* Byte offset of sparse slot k (< SPARSE_SLOTS) of page idx, 8-aligned. */
uint32_t content_sparse_offset(uint32_t idx, uint32_t k);

/* Write the sparse words of page idx at generation gen (gen >= 1). */
void content_sparse(uint8_t *page, uint32_t idx, uint32_t gen);

/* Write the stamp of page idx at generation gen. */
void content_stamp(uint8_t *page, uint32_t idx, uint32_t gen);

/* NULL if page carries the stamp (idx, gen), else the reason it does not. */
const char *content_check_stamp(const uint8_t *page, uint32_t idx,
				uint32_t gen);

/* Write all SECTOR_SIZE bytes of sector lba at generation gen. */
void content_sector(uint8_t *sec, uint32_t lba, uint32_t gen, enum profile prof);

/* NULL if sec carries the stamp (lba, gen), else the reason it does not. */
const char *content_check_sector_stamp(const uint8_t *sec, uint32_t lba,
				       uint32_t gen);

#endif
