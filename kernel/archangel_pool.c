// SPDX-License-Identifier: GPL-2.0
/*
 * Channel memory and the buffer pools.
 *
 * Buffer pools come from dma_alloc_coherent() against a platform device the
 * module registers (64-bit DMA mask), so a device could read and write them
 * directly; when that fails (no memory that contiguous, or pool_dma=N) they
 * fall back to vmalloc_user() pages. Ring memory and the extra shared region
 * are always vmalloc_user() pages. /proc/archangel/pool counts both kinds.
 *
 * The kernel lends its to_user pool (ach_lender: a private free stack and a
 * bitmap of lent buffers, so userspace can neither forge a free buffer nor
 * return one twice) and borrows the user's to_kernel pool (ach_borrower: a
 * bitmap of buffers named by the message being read, so two descriptors
 * cannot alias). The return rings and the return intent follow
 * docs/recovery.md and the ARCHANGEL_RETURN_INTENT comment in the ABI.
 */
#include <linux/atomic.h>
#include <linux/bitmap.h>
#include <linux/dma-mapping.h>
#include <linux/mm.h>
#include <linux/platform_device.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include "archangel.h"

/* Larger pools skip the DMA attempt (beyond the page allocator's reach). */
#define ACH_DMA_MAX	(4UL << 20)

static struct platform_device *ach_pdev;
static bool ach_dma_ok;

static atomic64_t ach_dma_regions = ATOMIC64_INIT(0);
static atomic64_t ach_dma_bytes = ATOMIC64_INIT(0);
static atomic64_t ach_page_regions = ATOMIC64_INIT(0);
static atomic64_t ach_page_bytes = ATOMIC64_INIT(0);
static atomic64_t ach_dma_failures = ATOMIC64_INIT(0);

int ach_pool_init(void)
{
	int err;

	ach_pdev = platform_device_register_simple("archangel",
						   PLATFORM_DEVID_NONE,
						   NULL, 0);
	if (IS_ERR(ach_pdev))
		return PTR_ERR(ach_pdev);
	err = dma_coerce_mask_and_coherent(&ach_pdev->dev, DMA_BIT_MASK(64));
	if (err)
		pr_info("archangel: no DMA mask (%d); pools use ordinary pages\n",
			err);
	ach_dma_ok = !err;
	return 0;
}

void ach_pool_exit(void)
{
	platform_device_unregister(ach_pdev);
}

void ach_pool_stats(u64 *dma_regions, u64 *dma_bytes, u64 *page_regions,
		    u64 *page_bytes, u64 *dma_failures)
{
	*dma_regions = atomic64_read(&ach_dma_regions);
	*dma_bytes = atomic64_read(&ach_dma_bytes);
	*page_regions = atomic64_read(&ach_page_regions);
	*page_bytes = atomic64_read(&ach_page_bytes);
	*dma_failures = atomic64_read(&ach_dma_failures);
}

/* Zeroed, page-aligned memory of @size bytes (rounded up to pages). */
int ach_region_alloc(struct ach_region *r, size_t size, bool try_dma)
{
	size = PAGE_ALIGN(size);
	r->size = size;
	r->is_dma = false;
	if (try_dma && ach_dma_ok && size <= ACH_DMA_MAX) {
		/* dma_alloc_coherent() memory is zeroed. */
		r->vaddr = dma_alloc_coherent(&ach_pdev->dev, size, &r->dma,
					      GFP_KERNEL | __GFP_NOWARN);
		if (r->vaddr) {
			r->is_dma = true;
			atomic64_inc(&ach_dma_regions);
			atomic64_add(size, &ach_dma_bytes);
			return 0;
		}
		atomic64_inc(&ach_dma_failures);
	}
	r->vaddr = vmalloc_user(size);
	if (!r->vaddr)
		return -ENOMEM;
	atomic64_inc(&ach_page_regions);
	atomic64_add(size, &ach_page_bytes);
	return 0;
}

void ach_region_free(struct ach_region *r)
{
	if (!r->vaddr)
		return;
	if (r->is_dma) {
		dma_free_coherent(&ach_pdev->dev, r->size, r->vaddr, r->dma);
		atomic64_dec(&ach_dma_regions);
		atomic64_sub(r->size, &ach_dma_bytes);
	} else {
		vfree(r->vaddr);
		atomic64_dec(&ach_page_regions);
		atomic64_sub(r->size, &ach_page_bytes);
	}
	r->vaddr = NULL;
}

/*
 * Maps @vma onto @r starting @offset bytes into the region. The caller
 * checked that the VMA lies inside the region.
 */
int ach_region_mmap(struct ach_region *r, struct vm_area_struct *vma,
		    u64 offset)
{
	unsigned long pgoff = vma->vm_pgoff;
	int err;

	if (!r->is_dma)
		return remap_vmalloc_range(vma, r->vaddr, offset >> PAGE_SHIFT);
	/* dma_mmap_coherent() reads the offset into the buffer from vm_pgoff. */
	vma->vm_pgoff = offset >> PAGE_SHIFT;
	err = dma_mmap_coherent(&ach_pdev->dev, vma, r->vaddr, r->dma,
				r->size);
	vma->vm_pgoff = pgoff;
	return err;
}

static unsigned long *ach_bitmap_alloc(u32 bits)
{
	return kvcalloc(BITS_TO_LONGS(max(bits, 1U)), sizeof(unsigned long),
			GFP_KERNEL);
}

/* ---------------------------------------------------------------------------
 * Lender: the kernel's to_user pool
 */

int ach_lender_init(struct ach_lender *l, void *base, u8 *buffers,
		    const struct archangel_pool_offsets *o)
{
	u32 i;

	l->buffers = buffers;
	l->buffer_size = o->buffer_size;
	l->count = o->buffer_count;
	l->threshold = o->threshold;
	l->max_segments = o->max_segments;
	ach_icons_init(&l->returns, base, &o->returns);
	l->free_stack = kvcalloc(max(l->count, 1U), sizeof(u32), GFP_KERNEL);
	if (!l->free_stack)
		return -ENOMEM;
	l->lent = ach_bitmap_alloc(l->count);
	if (!l->lent)
		goto err_free_stack;
	/* Highest index at the bottom, so buffer 0 is lent first. */
	for (i = 0; i < l->count; i++)
		l->free_stack[i] = l->count - 1 - i;
	l->free_count = l->count;
	return 0;

err_free_stack:
	kvfree(l->free_stack);
	l->free_stack = NULL;
	return -ENOMEM;
}

void ach_lender_free(struct ach_lender *l)
{
	kvfree(l->lent);
	kvfree(l->free_stack);
	l->lent = NULL;
	l->free_stack = NULL;
}

static int ach_lender_take_back(void *arg, u32 index)
{
	struct ach_lender *l = arg;

	/* Read once by the drain; checked against our own bitmap only. */
	if (index >= l->count || !test_bit(index, l->lent))
		return -EPROTO;
	__clear_bit(index, l->lent);
	l->free_stack[l->free_count++] = index;
	return 0;
}

/* Takes back every buffer the user returned: 0 or -EPROTO. */
int ach_lender_reclaim(struct ach_lender *l)
{
	int n;

	if (!l->count)
		return 0;
	n = ach_icons_drain(&l->returns, ach_lender_take_back, l);
	return n < 0 ? n : 0;
}

/* Takes a free buffer and marks it lent; the caller checked free_count. */
u32 ach_lender_take(struct ach_lender *l)
{
	u32 index = l->free_stack[--l->free_count];

	__set_bit(index, l->lent);
	return index;
}

/* ---------------------------------------------------------------------------
 * Borrower: the user's to_kernel pool
 */

int ach_borrower_init(struct ach_borrower *b, void *base, const u8 *buffers,
		      const struct archangel_pool_offsets *o)
{
	b->buffers = buffers;
	b->buffer_size = o->buffer_size;
	b->count = o->buffer_count;
	b->max_segments = max(o->max_segments, 1U);
	b->kintent = (u64 *)((u8 *)base + o->return_intent);
	ach_iprod_init(&b->returns, base, &o->returns);
	b->held = ach_bitmap_alloc(b->count);
	if (!b->held)
		return -ENOMEM;
	b->seg_buf = kcalloc(b->max_segments, 3 * sizeof(u32), GFP_KERNEL);
	if (!b->seg_buf)
		goto err_free_held;
	b->seg_off = b->seg_buf + b->max_segments;
	b->seg_len = b->seg_off + b->max_segments;
	return 0;

err_free_held:
	kvfree(b->held);
	b->held = NULL;
	return -ENOMEM;
}

void ach_borrower_free(struct ach_borrower *b)
{
	kfree(b->seg_buf);
	kvfree(b->held);
	b->seg_buf = NULL;
	b->held = NULL;
}
