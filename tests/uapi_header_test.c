// SPDX-License-Identifier: GPL-2.0
/*
 * Compile-time check of the iopfmap uapi header: it builds on its own (as
 * C99 -pedantic, C11 and C++11), and the layout of every struct, the ioctl
 * numbers and the values of the flags and codes are exactly the ABI. A
 * change that breaks a check here breaks binaries built against an older
 * header.
 */
#include <linux/iopfmap.h>

#include <stddef.h>	/* offsetof */
#include <stdio.h>

#if defined(__cplusplus) && __cplusplus >= 201103L
#define ABI_ASSERT(cond, name) static_assert(cond, #name)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define ABI_ASSERT(cond, name) _Static_assert(cond, #name)
#else
/* C99 has no static assertion: a negative array size fails the build. */
#define ABI_ASSERT(cond, name) typedef char abi_assert_##name[(cond) ? 1 : -1]
#endif

#define FIELD_SIZE(type, field) sizeof(((struct type *)0)->field)
#define CHECK_FIELD(type, field, off, size)					\
	ABI_ASSERT(offsetof(struct type, field) == (off) &&			\
		   FIELD_SIZE(type, field) == (size), type##_field_##field)

/*
 * 8, also on 32-bit x86 where a plain __u64 is 4-aligned. _Alignof is C11,
 * so measure the offset of the struct after a char.
 */
#define CHECK_ALIGN(type)							\
	struct type##_align {							\
		char c;								\
		struct type s;							\
	};									\
	ABI_ASSERT(offsetof(struct type##_align, s) == 8, type##_align)

/* The ioctl numbers are ABI as much as the structs are. */
ABI_ASSERT(IOPFMAP_TYPE == 0xE7, iopfmap_type);
ABI_ASSERT(IOPFMAP_CMD_BASE == 0x80, iopfmap_cmd_base);
ABI_ASSERT(IOPFMAP_ABI_VERSION == 1, iopfmap_abi_version);

#define CHECK_CMD(NAME, nr, value)						\
	ABI_ASSERT(IOPFMAP_CMD_##NAME == (nr), iopfmap_cmd_##NAME);		\
	ABI_ASSERT(IOPFMAP_##NAME == _IO(0xE7, (nr)) &&			\
		   IOPFMAP_##NAME == (value), iopfmap_ioctl_##NAME)

CHECK_CMD(GET_INFO, 0x80, 0xE780);
CHECK_CMD(MAP, 0x81, 0xE781);
CHECK_CMD(UNMAP, 0x82, 0xE782);
CHECK_CMD(SET_MODE, 0x83, 0xE783);
CHECK_CMD(GET_STATS, 0x84, 0xE784);
CHECK_CMD(QUERY_MAPPED, 0x85, 0xE785);
CHECK_CMD(SIM_CREATE, 0x86, 0xE786);
CHECK_CMD(SIM_DMA, 0x87, 0xE787);
CHECK_CMD(SIM_PAGE_REQUEST, 0x88, 0xE788);
CHECK_CMD(SIM_S1_MAP, 0x89, 0xE789);
CHECK_CMD(SIM_S1_UNMAP, 0x8a, 0xE78A);
CHECK_CMD(DEVICE_ATTACH, 0x8b, 0xE78B);
CHECK_CMD(DEVICE_DETACH, 0x8c, 0xE78C);
CHECK_CMD(QUEUE_ALLOC, 0x8d, 0xE78D);
CHECK_CMD(QUEUE_GET_INFO, 0x8e, 0xE78E);
CHECK_CMD(SIM_GET_STATS, 0x8f, 0xE78F);
/* io_uring command opcodes of a queue fd: ioctl-encoded, with a size. */
ABI_ASSERT(IOPFMAP_QUEUE_FETCH == 0xC010E7A0U, iopfmap_queue_fetch_op);
ABI_ASSERT(IOPFMAP_QUEUE_COMMIT_AND_FETCH == 0xC010E7A1U,
	   iopfmap_queue_commit_op);

/* Flag bits, modes and codes: values userspace has compiled in. */
ABI_ASSERT(IOPFMAP_FEATURE_MAP == 1 && IOPFMAP_FEATURE_SIM == 2 &&
	   IOPFMAP_FEATURE_DEVICE == 4 && IOPFMAP_FEATURE_HW_IOPF == 8 &&
	   IOPFMAP_FEATURE_QUEUE == 16 && IOPFMAP_FEATURE_CORE_FAULTS == 32 &&
	   IOPFMAP_FEATURE_PASID_ATTACH == 64 &&
	   IOPFMAP_FEATURES_KNOWN == 127,
	   iopfmap_features);
ABI_ASSERT(IOPFMAP_IOPT_NONE == 0 && IOPFMAP_IOPT_SIM == 1 &&
	   IOPFMAP_IOPT_DOMAIN == 2, iopfmap_iopt);
ABI_ASSERT(IOPFMAP_MAP_READ == 1 && IOPFMAP_MAP_WRITE == 2 &&
	   IOPFMAP_MAP_PIN == 4 && IOPFMAP_MAP_FORWARD == 8, iopfmap_map_flags);
ABI_ASSERT(IOPFMAP_PREFETCH_MAX == 512, iopfmap_prefetch_max);
ABI_ASSERT(IOPFMAP_UNMAP_ALL == 1, iopfmap_unmap_flags);
ABI_ASSERT(IOPFMAP_MODE_FAULT == 0 && IOPFMAP_MODE_PIN == 1, iopfmap_modes);
ABI_ASSERT(IOPFMAP_STATS_RANGE == 1, iopfmap_stats_flags);
ABI_ASSERT(IOPFMAP_QUERY_IOPT == 1, iopfmap_query_flags);
ABI_ASSERT(IOPFMAP_SIM_NESTED == 1, iopfmap_sim_create_flags);
ABI_ASSERT(IOPFMAP_SIM_DMA_WRITE == 1 && IOPFMAP_SIM_DMA_PASID == 2,
	   iopfmap_sim_dma_flags);
ABI_ASSERT(IOPFMAP_SIM_DMA_OK == 0 && IOPFMAP_SIM_DMA_INVALID == 1 &&
	   IOPFMAP_SIM_DMA_S1_FAULT == 2 && IOPFMAP_SIM_DMA_NO_PROGRESS == 3 &&
	   IOPFMAP_SIM_DMA_FAILURE == 4, iopfmap_sim_dma_status);
ABI_ASSERT(IOPFMAP_PRQ_READ == 1 && IOPFMAP_PRQ_WRITE == 2 &&
	   IOPFMAP_PRQ_PASID == 4 && IOPFMAP_PRQ_LAST == 8, iopfmap_prq_flags);
ABI_ASSERT(IOPFMAP_PAGE_RESP_SUCCESS == 0 && IOPFMAP_PAGE_RESP_INVALID == 1 &&
	   IOPFMAP_PAGE_RESP_FAILURE == 0xf &&
	   IOPFMAP_PAGE_RESP_PENDING == 0xffffffffU, iopfmap_page_resp);
ABI_ASSERT(IOPFMAP_PRQ_GROUP_MAX == 32, iopfmap_prq_group_max);
ABI_ASSERT(IOPFMAP_ATTACH_OWN_DOMAIN == 1 && IOPFMAP_ATTACH_REQUIRE_IOPF == 2 &&
	   IOPFMAP_ATTACH_PASID == 4 && IOPFMAP_PASID_MAX == 0xfffff,
	   iopfmap_attach_flags);
ABI_ASSERT(IOPFMAP_DEVICE_HW_IOPF == 1 && IOPFMAP_DEVICE_MSI_ISOLATED == 2 &&
	   IOPFMAP_DEVICE_PASID == 4, iopfmap_device_out_flags);
ABI_ASSERT(IOPFMAP_DOMAINS_MAX == 4, iopfmap_domains_max);
ABI_ASSERT(IOPFMAP_DEVICE_NAME_MAX == 32, iopfmap_device_name_max);
ABI_ASSERT(IOPFMAP_FAULT_GROUP_MAX == 64 &&
	   IOPFMAP_QUEUE_DEPTH_DEFAULT == 256 &&
	   IOPFMAP_QUEUE_DEPTH_MAX == 4096, iopfmap_queue_limits);
ABI_ASSERT(IOPFMAP_QUEUE_NONBLOCK == 1 && IOPFMAP_QUEUE_FEAT_RW == 1 &&
	   IOPFMAP_QUEUE_FEAT_URING_CMD == 2 &&
	   IOPFMAP_QUEUE_FEAT_URING_CANCEL == 4 &&
	   IOPFMAP_QUEUE_CTX_GONE == 1, iopfmap_queue_flags);
ABI_ASSERT(IOPFMAP_RECORD_LAST == 1 && IOPFMAP_RECORD_PASID == 2 &&
	   IOPFMAP_RECORD_STAGE1 == 4, iopfmap_record_flags);

/* struct iopfmap_info: 32 bytes in its first version, 64 now. */
CHECK_FIELD(iopfmap_info, size, 0, 4);
CHECK_FIELD(iopfmap_info, flags, 4, 4);
CHECK_FIELD(iopfmap_info, out_abi_version, 8, 4);
CHECK_FIELD(iopfmap_info, __reserved, 12, 4);
CHECK_FIELD(iopfmap_info, out_features, 16, 8);
CHECK_FIELD(iopfmap_info, out_pgsize_bitmap, 24, 8);
CHECK_FIELD(iopfmap_info, out_iopt_type, 32, 4);
CHECK_FIELD(iopfmap_info, __reserved2, 36, 4);
CHECK_FIELD(iopfmap_info, out_iova_start, 40, 8);
CHECK_FIELD(iopfmap_info, out_iova_last, 48, 8);
CHECK_FIELD(iopfmap_info, out_ctx_id, 56, 4);
CHECK_FIELD(iopfmap_info, __reserved3, 60, 4);
ABI_ASSERT(sizeof(struct iopfmap_info) == 64, iopfmap_info_size);
/* The first version ended at out_pgsize_bitmap: old binaries pass 32. */
ABI_ASSERT(offsetof(struct iopfmap_info, out_pgsize_bitmap) +
	   FIELD_SIZE(iopfmap_info, out_pgsize_bitmap) == 32,
	   iopfmap_info_min_size);
/* No implicit padding, inside or at the end. */
ABI_ASSERT(sizeof(struct iopfmap_info) ==
	   FIELD_SIZE(iopfmap_info, size) + FIELD_SIZE(iopfmap_info, flags) +
	   FIELD_SIZE(iopfmap_info, out_abi_version) +
	   FIELD_SIZE(iopfmap_info, __reserved) +
	   FIELD_SIZE(iopfmap_info, out_features) +
	   FIELD_SIZE(iopfmap_info, out_pgsize_bitmap) +
	   FIELD_SIZE(iopfmap_info, out_iopt_type) +
	   FIELD_SIZE(iopfmap_info, __reserved2) +
	   FIELD_SIZE(iopfmap_info, out_iova_start) +
	   FIELD_SIZE(iopfmap_info, out_iova_last) +
	   FIELD_SIZE(iopfmap_info, out_ctx_id) +
	   FIELD_SIZE(iopfmap_info, __reserved3), iopfmap_info_padding);
CHECK_ALIGN(iopfmap_info);

CHECK_FIELD(iopfmap_map, size, 0, 4);
CHECK_FIELD(iopfmap_map, flags, 4, 4);
CHECK_FIELD(iopfmap_map, iova, 8, 8);
CHECK_FIELD(iopfmap_map, vaddr, 16, 8);
CHECK_FIELD(iopfmap_map, length, 24, 8);
CHECK_FIELD(iopfmap_map, prefetch_pages, 32, 4);
CHECK_FIELD(iopfmap_map, __reserved, 36, 4);
CHECK_FIELD(iopfmap_map, out_range_id, 40, 4);
CHECK_FIELD(iopfmap_map, __reserved2, 44, 4);
ABI_ASSERT(sizeof(struct iopfmap_map) == 48, iopfmap_map_size);
ABI_ASSERT(sizeof(struct iopfmap_map) ==
	   FIELD_SIZE(iopfmap_map, size) + FIELD_SIZE(iopfmap_map, flags) +
	   FIELD_SIZE(iopfmap_map, iova) + FIELD_SIZE(iopfmap_map, vaddr) +
	   FIELD_SIZE(iopfmap_map, length) +
	   FIELD_SIZE(iopfmap_map, prefetch_pages) +
	   FIELD_SIZE(iopfmap_map, __reserved) +
	   FIELD_SIZE(iopfmap_map, out_range_id) +
	   FIELD_SIZE(iopfmap_map, __reserved2), iopfmap_map_padding);
CHECK_ALIGN(iopfmap_map);

CHECK_FIELD(iopfmap_unmap, size, 0, 4);
CHECK_FIELD(iopfmap_unmap, flags, 4, 4);
CHECK_FIELD(iopfmap_unmap, iova, 8, 8);
CHECK_FIELD(iopfmap_unmap, length, 16, 8);
CHECK_FIELD(iopfmap_unmap, out_unmapped, 24, 8);
ABI_ASSERT(sizeof(struct iopfmap_unmap) == 32, iopfmap_unmap_size);
ABI_ASSERT(sizeof(struct iopfmap_unmap) ==
	   FIELD_SIZE(iopfmap_unmap, size) + FIELD_SIZE(iopfmap_unmap, flags) +
	   FIELD_SIZE(iopfmap_unmap, iova) + FIELD_SIZE(iopfmap_unmap, length) +
	   FIELD_SIZE(iopfmap_unmap, out_unmapped), iopfmap_unmap_padding);
CHECK_ALIGN(iopfmap_unmap);

CHECK_FIELD(iopfmap_set_mode, size, 0, 4);
CHECK_FIELD(iopfmap_set_mode, flags, 4, 4);
CHECK_FIELD(iopfmap_set_mode, iova, 8, 8);
CHECK_FIELD(iopfmap_set_mode, mode, 16, 4);
CHECK_FIELD(iopfmap_set_mode, __reserved, 20, 4);
ABI_ASSERT(sizeof(struct iopfmap_set_mode) == 24, iopfmap_set_mode_size);
ABI_ASSERT(sizeof(struct iopfmap_set_mode) ==
	   FIELD_SIZE(iopfmap_set_mode, size) +
	   FIELD_SIZE(iopfmap_set_mode, flags) +
	   FIELD_SIZE(iopfmap_set_mode, iova) +
	   FIELD_SIZE(iopfmap_set_mode, mode) +
	   FIELD_SIZE(iopfmap_set_mode, __reserved), iopfmap_set_mode_padding);
CHECK_ALIGN(iopfmap_set_mode);

CHECK_FIELD(iopfmap_stats, size, 0, 4);
CHECK_FIELD(iopfmap_stats, flags, 4, 4);
CHECK_FIELD(iopfmap_stats, iova, 8, 8);
CHECK_FIELD(iopfmap_stats, out_faults, 16, 8);
CHECK_FIELD(iopfmap_stats, out_faults_handled, 24, 8);
CHECK_FIELD(iopfmap_stats, out_faults_invalid, 32, 8);
CHECK_FIELD(iopfmap_stats, out_faults_forwarded, 40, 8);
CHECK_FIELD(iopfmap_stats, out_pages_mapped, 48, 8);
CHECK_FIELD(iopfmap_stats, out_pages_prefetched, 56, 8);
CHECK_FIELD(iopfmap_stats, out_huge_mappings, 64, 8);
CHECK_FIELD(iopfmap_stats, out_invalidations, 72, 8);
CHECK_FIELD(iopfmap_stats, out_invalidations_handled, 80, 8);
CHECK_FIELD(iopfmap_stats, out_pages_unmapped, 88, 8);
CHECK_FIELD(iopfmap_stats, out_retries, 96, 8);
CHECK_FIELD(iopfmap_stats, out_pages_pinned, 104, 8);
ABI_ASSERT(sizeof(struct iopfmap_stats) == 112, iopfmap_stats_size);
ABI_ASSERT(sizeof(struct iopfmap_stats) ==
	   FIELD_SIZE(iopfmap_stats, size) + FIELD_SIZE(iopfmap_stats, flags) +
	   FIELD_SIZE(iopfmap_stats, iova) +
	   FIELD_SIZE(iopfmap_stats, out_faults) +
	   FIELD_SIZE(iopfmap_stats, out_faults_handled) +
	   FIELD_SIZE(iopfmap_stats, out_faults_invalid) +
	   FIELD_SIZE(iopfmap_stats, out_faults_forwarded) +
	   FIELD_SIZE(iopfmap_stats, out_pages_mapped) +
	   FIELD_SIZE(iopfmap_stats, out_pages_prefetched) +
	   FIELD_SIZE(iopfmap_stats, out_huge_mappings) +
	   FIELD_SIZE(iopfmap_stats, out_invalidations) +
	   FIELD_SIZE(iopfmap_stats, out_invalidations_handled) +
	   FIELD_SIZE(iopfmap_stats, out_pages_unmapped) +
	   FIELD_SIZE(iopfmap_stats, out_retries) +
	   FIELD_SIZE(iopfmap_stats, out_pages_pinned), iopfmap_stats_padding);
CHECK_ALIGN(iopfmap_stats);

CHECK_FIELD(iopfmap_query_mapped, size, 0, 4);
CHECK_FIELD(iopfmap_query_mapped, flags, 4, 4);
CHECK_FIELD(iopfmap_query_mapped, iova, 8, 8);
CHECK_FIELD(iopfmap_query_mapped, length, 16, 8);
CHECK_FIELD(iopfmap_query_mapped, bitmap, 24, 8);
CHECK_FIELD(iopfmap_query_mapped, out_mapped_pages, 32, 8);
ABI_ASSERT(sizeof(struct iopfmap_query_mapped) == 40,
	   iopfmap_query_mapped_size);
ABI_ASSERT(sizeof(struct iopfmap_query_mapped) ==
	   FIELD_SIZE(iopfmap_query_mapped, size) +
	   FIELD_SIZE(iopfmap_query_mapped, flags) +
	   FIELD_SIZE(iopfmap_query_mapped, iova) +
	   FIELD_SIZE(iopfmap_query_mapped, length) +
	   FIELD_SIZE(iopfmap_query_mapped, bitmap) +
	   FIELD_SIZE(iopfmap_query_mapped, out_mapped_pages),
	   iopfmap_query_mapped_padding);
CHECK_ALIGN(iopfmap_query_mapped);

CHECK_FIELD(iopfmap_sim_create, size, 0, 4);
CHECK_FIELD(iopfmap_sim_create, flags, 4, 4);
CHECK_FIELD(iopfmap_sim_create, pgsize_bitmap, 8, 8);
CHECK_FIELD(iopfmap_sim_create, out_pgsize_bitmap, 16, 8);
CHECK_FIELD(iopfmap_sim_create, out_iova_last, 24, 8);
ABI_ASSERT(sizeof(struct iopfmap_sim_create) == 32, iopfmap_sim_create_size);
ABI_ASSERT(sizeof(struct iopfmap_sim_create) ==
	   FIELD_SIZE(iopfmap_sim_create, size) +
	   FIELD_SIZE(iopfmap_sim_create, flags) +
	   FIELD_SIZE(iopfmap_sim_create, pgsize_bitmap) +
	   FIELD_SIZE(iopfmap_sim_create, out_pgsize_bitmap) +
	   FIELD_SIZE(iopfmap_sim_create, out_iova_last),
	   iopfmap_sim_create_padding);
CHECK_ALIGN(iopfmap_sim_create);

CHECK_FIELD(iopfmap_sim_dma, size, 0, 4);
CHECK_FIELD(iopfmap_sim_dma, flags, 4, 4);
CHECK_FIELD(iopfmap_sim_dma, iova, 8, 8);
CHECK_FIELD(iopfmap_sim_dma, length, 16, 8);
CHECK_FIELD(iopfmap_sim_dma, buffer, 24, 8);
CHECK_FIELD(iopfmap_sim_dma, pasid, 32, 4);
CHECK_FIELD(iopfmap_sim_dma, out_status, 36, 4);
CHECK_FIELD(iopfmap_sim_dma, out_done, 40, 8);
CHECK_FIELD(iopfmap_sim_dma, out_fault_iova, 48, 8);
CHECK_FIELD(iopfmap_sim_dma, out_faults, 56, 4);
CHECK_FIELD(iopfmap_sim_dma, out_iotlb_misses, 60, 4);
ABI_ASSERT(sizeof(struct iopfmap_sim_dma) == 64, iopfmap_sim_dma_size);
ABI_ASSERT(sizeof(struct iopfmap_sim_dma) ==
	   FIELD_SIZE(iopfmap_sim_dma, size) +
	   FIELD_SIZE(iopfmap_sim_dma, flags) +
	   FIELD_SIZE(iopfmap_sim_dma, iova) +
	   FIELD_SIZE(iopfmap_sim_dma, length) +
	   FIELD_SIZE(iopfmap_sim_dma, buffer) +
	   FIELD_SIZE(iopfmap_sim_dma, pasid) +
	   FIELD_SIZE(iopfmap_sim_dma, out_status) +
	   FIELD_SIZE(iopfmap_sim_dma, out_done) +
	   FIELD_SIZE(iopfmap_sim_dma, out_fault_iova) +
	   FIELD_SIZE(iopfmap_sim_dma, out_faults) +
	   FIELD_SIZE(iopfmap_sim_dma, out_iotlb_misses),
	   iopfmap_sim_dma_padding);
CHECK_ALIGN(iopfmap_sim_dma);

CHECK_FIELD(iopfmap_sim_page_request, size, 0, 4);
CHECK_FIELD(iopfmap_sim_page_request, flags, 4, 4);
CHECK_FIELD(iopfmap_sim_page_request, iova, 8, 8);
CHECK_FIELD(iopfmap_sim_page_request, pasid, 16, 4);
CHECK_FIELD(iopfmap_sim_page_request, grpid, 20, 4);
CHECK_FIELD(iopfmap_sim_page_request, out_response, 24, 4);
CHECK_FIELD(iopfmap_sim_page_request, __reserved, 28, 4);
ABI_ASSERT(sizeof(struct iopfmap_sim_page_request) == 32,
	   iopfmap_sim_page_request_size);
ABI_ASSERT(sizeof(struct iopfmap_sim_page_request) ==
	   FIELD_SIZE(iopfmap_sim_page_request, size) +
	   FIELD_SIZE(iopfmap_sim_page_request, flags) +
	   FIELD_SIZE(iopfmap_sim_page_request, iova) +
	   FIELD_SIZE(iopfmap_sim_page_request, pasid) +
	   FIELD_SIZE(iopfmap_sim_page_request, grpid) +
	   FIELD_SIZE(iopfmap_sim_page_request, out_response) +
	   FIELD_SIZE(iopfmap_sim_page_request, __reserved),
	   iopfmap_sim_page_request_padding);
CHECK_ALIGN(iopfmap_sim_page_request);

CHECK_FIELD(iopfmap_sim_s1_map, size, 0, 4);
CHECK_FIELD(iopfmap_sim_s1_map, flags, 4, 4);
CHECK_FIELD(iopfmap_sim_s1_map, iova, 8, 8);
CHECK_FIELD(iopfmap_sim_s1_map, ipa, 16, 8);
CHECK_FIELD(iopfmap_sim_s1_map, length, 24, 8);
ABI_ASSERT(sizeof(struct iopfmap_sim_s1_map) == 32, iopfmap_sim_s1_map_size);
ABI_ASSERT(sizeof(struct iopfmap_sim_s1_map) ==
	   FIELD_SIZE(iopfmap_sim_s1_map, size) +
	   FIELD_SIZE(iopfmap_sim_s1_map, flags) +
	   FIELD_SIZE(iopfmap_sim_s1_map, iova) +
	   FIELD_SIZE(iopfmap_sim_s1_map, ipa) +
	   FIELD_SIZE(iopfmap_sim_s1_map, length), iopfmap_sim_s1_map_padding);
CHECK_ALIGN(iopfmap_sim_s1_map);

CHECK_FIELD(iopfmap_sim_s1_unmap, size, 0, 4);
CHECK_FIELD(iopfmap_sim_s1_unmap, flags, 4, 4);
CHECK_FIELD(iopfmap_sim_s1_unmap, iova, 8, 8);
CHECK_FIELD(iopfmap_sim_s1_unmap, length, 16, 8);
CHECK_FIELD(iopfmap_sim_s1_unmap, out_unmapped, 24, 8);
ABI_ASSERT(sizeof(struct iopfmap_sim_s1_unmap) == 32,
	   iopfmap_sim_s1_unmap_size);
ABI_ASSERT(sizeof(struct iopfmap_sim_s1_unmap) ==
	   FIELD_SIZE(iopfmap_sim_s1_unmap, size) +
	   FIELD_SIZE(iopfmap_sim_s1_unmap, flags) +
	   FIELD_SIZE(iopfmap_sim_s1_unmap, iova) +
	   FIELD_SIZE(iopfmap_sim_s1_unmap, length) +
	   FIELD_SIZE(iopfmap_sim_s1_unmap, out_unmapped),
	   iopfmap_sim_s1_unmap_padding);
CHECK_ALIGN(iopfmap_sim_s1_unmap);

CHECK_FIELD(iopfmap_device_attach, size, 0, 4);
CHECK_FIELD(iopfmap_device_attach, flags, 4, 4);
CHECK_FIELD(iopfmap_device_attach, name, 8, 32);
CHECK_FIELD(iopfmap_device_attach, out_dev_id, 40, 4);
CHECK_FIELD(iopfmap_device_attach, out_flags, 44, 4);
CHECK_FIELD(iopfmap_device_attach, out_pgsize_bitmap, 48, 8);
CHECK_FIELD(iopfmap_device_attach, out_iova_start, 56, 8);
CHECK_FIELD(iopfmap_device_attach, out_iova_last, 64, 8);
CHECK_FIELD(iopfmap_device_attach, pasid, 72, 4);
CHECK_FIELD(iopfmap_device_attach, __reserved, 76, 4);
ABI_ASSERT(sizeof(struct iopfmap_device_attach) == 80,
	   iopfmap_device_attach_size);
ABI_ASSERT(sizeof(struct iopfmap_device_attach) ==
	   FIELD_SIZE(iopfmap_device_attach, size) +
	   FIELD_SIZE(iopfmap_device_attach, flags) +
	   FIELD_SIZE(iopfmap_device_attach, name) +
	   FIELD_SIZE(iopfmap_device_attach, out_dev_id) +
	   FIELD_SIZE(iopfmap_device_attach, out_flags) +
	   FIELD_SIZE(iopfmap_device_attach, out_pgsize_bitmap) +
	   FIELD_SIZE(iopfmap_device_attach, out_iova_start) +
	   FIELD_SIZE(iopfmap_device_attach, out_iova_last) +
	   FIELD_SIZE(iopfmap_device_attach, pasid) +
	   FIELD_SIZE(iopfmap_device_attach, __reserved),
	   iopfmap_device_attach_padding);
CHECK_ALIGN(iopfmap_device_attach);

CHECK_FIELD(iopfmap_device_detach, size, 0, 4);
CHECK_FIELD(iopfmap_device_detach, flags, 4, 4);
CHECK_FIELD(iopfmap_device_detach, dev_id, 8, 4);
CHECK_FIELD(iopfmap_device_detach, __reserved, 12, 4);
ABI_ASSERT(sizeof(struct iopfmap_device_detach) == 16,
	   iopfmap_device_detach_size);
ABI_ASSERT(sizeof(struct iopfmap_device_detach) ==
	   FIELD_SIZE(iopfmap_device_detach, size) +
	   FIELD_SIZE(iopfmap_device_detach, flags) +
	   FIELD_SIZE(iopfmap_device_detach, dev_id) +
	   FIELD_SIZE(iopfmap_device_detach, __reserved),
	   iopfmap_device_detach_padding);

/* The fault queue ABI (IOPFMAP_FEATURE_QUEUE). */
CHECK_FIELD(iopfmap_sim_stats, size, 0, 4);
CHECK_FIELD(iopfmap_sim_stats, flags, 4, 4);
CHECK_FIELD(iopfmap_sim_stats, out_page_requests, 8, 8);
CHECK_FIELD(iopfmap_sim_stats, out_responses, 16, 8);
CHECK_FIELD(iopfmap_sim_stats, out_resp_success, 24, 8);
CHECK_FIELD(iopfmap_sim_stats, out_resp_invalid, 32, 8);
CHECK_FIELD(iopfmap_sim_stats, out_resp_failure, 40, 8);
CHECK_FIELD(iopfmap_sim_stats, out_withdrawn, 48, 8);
ABI_ASSERT(sizeof(struct iopfmap_sim_stats) == 56, iopfmap_sim_stats_size);
ABI_ASSERT(sizeof(struct iopfmap_sim_stats) ==
	   FIELD_SIZE(iopfmap_sim_stats, size) +
	   FIELD_SIZE(iopfmap_sim_stats, flags) +
	   FIELD_SIZE(iopfmap_sim_stats, out_page_requests) +
	   FIELD_SIZE(iopfmap_sim_stats, out_responses) +
	   FIELD_SIZE(iopfmap_sim_stats, out_resp_success) +
	   FIELD_SIZE(iopfmap_sim_stats, out_resp_invalid) +
	   FIELD_SIZE(iopfmap_sim_stats, out_resp_failure) +
	   FIELD_SIZE(iopfmap_sim_stats, out_withdrawn),
	   iopfmap_sim_stats_padding);
CHECK_ALIGN(iopfmap_sim_stats);

CHECK_FIELD(iopfmap_queue_alloc, size, 0, 4);
CHECK_FIELD(iopfmap_queue_alloc, flags, 4, 4);
CHECK_FIELD(iopfmap_queue_alloc, depth, 8, 4);
CHECK_FIELD(iopfmap_queue_alloc, timeout_ms, 12, 4);
CHECK_FIELD(iopfmap_queue_alloc, out_fd, 16, 4);
CHECK_FIELD(iopfmap_queue_alloc, out_features, 20, 4);
ABI_ASSERT(sizeof(struct iopfmap_queue_alloc) == 24, iopfmap_queue_alloc_size);
ABI_ASSERT(sizeof(struct iopfmap_queue_alloc) ==
	   FIELD_SIZE(iopfmap_queue_alloc, size) +
	   FIELD_SIZE(iopfmap_queue_alloc, flags) +
	   FIELD_SIZE(iopfmap_queue_alloc, depth) +
	   FIELD_SIZE(iopfmap_queue_alloc, timeout_ms) +
	   FIELD_SIZE(iopfmap_queue_alloc, out_fd) +
	   FIELD_SIZE(iopfmap_queue_alloc, out_features),
	   iopfmap_queue_alloc_padding);

CHECK_FIELD(iopfmap_queue_info, size, 0, 4);
CHECK_FIELD(iopfmap_queue_info, flags, 4, 4);
CHECK_FIELD(iopfmap_queue_info, out_ctx_id, 8, 4);
CHECK_FIELD(iopfmap_queue_info, out_features, 12, 4);
CHECK_FIELD(iopfmap_queue_info, out_depth, 16, 4);
CHECK_FIELD(iopfmap_queue_info, out_timeout_ms, 20, 4);
CHECK_FIELD(iopfmap_queue_info, out_pending, 24, 4);
CHECK_FIELD(iopfmap_queue_info, out_inflight, 28, 4);
CHECK_FIELD(iopfmap_queue_info, out_flags, 32, 4);
CHECK_FIELD(iopfmap_queue_info, __reserved, 36, 4);
CHECK_FIELD(iopfmap_queue_info, out_groups, 40, 8);
CHECK_FIELD(iopfmap_queue_info, out_records, 48, 8);
CHECK_FIELD(iopfmap_queue_info, out_delivered, 56, 8);
CHECK_FIELD(iopfmap_queue_info, out_resp_success, 64, 8);
CHECK_FIELD(iopfmap_queue_info, out_resp_invalid, 72, 8);
CHECK_FIELD(iopfmap_queue_info, out_resp_failure, 80, 8);
CHECK_FIELD(iopfmap_queue_info, out_timeouts, 88, 8);
CHECK_FIELD(iopfmap_queue_info, out_closed, 96, 8);
CHECK_FIELD(iopfmap_queue_info, out_overflows, 104, 8);
CHECK_FIELD(iopfmap_queue_info, out_withdrawn, 112, 8);
CHECK_FIELD(iopfmap_queue_info, out_refused, 120, 8);
ABI_ASSERT(sizeof(struct iopfmap_queue_info) == 128, iopfmap_queue_info_size);
ABI_ASSERT(sizeof(struct iopfmap_queue_info) ==
	   FIELD_SIZE(iopfmap_queue_info, size) +
	   FIELD_SIZE(iopfmap_queue_info, flags) +
	   FIELD_SIZE(iopfmap_queue_info, out_ctx_id) +
	   FIELD_SIZE(iopfmap_queue_info, out_features) +
	   FIELD_SIZE(iopfmap_queue_info, out_depth) +
	   FIELD_SIZE(iopfmap_queue_info, out_timeout_ms) +
	   FIELD_SIZE(iopfmap_queue_info, out_pending) +
	   FIELD_SIZE(iopfmap_queue_info, out_inflight) +
	   FIELD_SIZE(iopfmap_queue_info, out_flags) +
	   FIELD_SIZE(iopfmap_queue_info, __reserved) +
	   FIELD_SIZE(iopfmap_queue_info, out_groups) +
	   FIELD_SIZE(iopfmap_queue_info, out_records) +
	   FIELD_SIZE(iopfmap_queue_info, out_delivered) +
	   FIELD_SIZE(iopfmap_queue_info, out_resp_success) +
	   FIELD_SIZE(iopfmap_queue_info, out_resp_invalid) +
	   FIELD_SIZE(iopfmap_queue_info, out_resp_failure) +
	   FIELD_SIZE(iopfmap_queue_info, out_timeouts) +
	   FIELD_SIZE(iopfmap_queue_info, out_closed) +
	   FIELD_SIZE(iopfmap_queue_info, out_overflows) +
	   FIELD_SIZE(iopfmap_queue_info, out_withdrawn) +
	   FIELD_SIZE(iopfmap_queue_info, out_refused),
	   iopfmap_queue_info_padding);
CHECK_ALIGN(iopfmap_queue_info);

CHECK_FIELD(iopfmap_fault_record, cookie, 0, 8);
CHECK_FIELD(iopfmap_fault_record, addr, 8, 8);
CHECK_FIELD(iopfmap_fault_record, time_ns, 16, 8);
CHECK_FIELD(iopfmap_fault_record, flags, 24, 4);
CHECK_FIELD(iopfmap_fault_record, perm, 28, 4);
CHECK_FIELD(iopfmap_fault_record, pasid, 32, 4);
CHECK_FIELD(iopfmap_fault_record, grpid, 36, 4);
CHECK_FIELD(iopfmap_fault_record, ctx_id, 40, 4);
CHECK_FIELD(iopfmap_fault_record, dev_id, 44, 4);
CHECK_FIELD(iopfmap_fault_record, range_id, 48, 4);
CHECK_FIELD(iopfmap_fault_record, __reserved, 52, 4);
ABI_ASSERT(sizeof(struct iopfmap_fault_record) == 56, iopfmap_fault_record_size);
ABI_ASSERT(sizeof(struct iopfmap_fault_record) ==
	   FIELD_SIZE(iopfmap_fault_record, cookie) +
	   FIELD_SIZE(iopfmap_fault_record, addr) +
	   FIELD_SIZE(iopfmap_fault_record, time_ns) +
	   FIELD_SIZE(iopfmap_fault_record, flags) +
	   FIELD_SIZE(iopfmap_fault_record, perm) +
	   FIELD_SIZE(iopfmap_fault_record, pasid) +
	   FIELD_SIZE(iopfmap_fault_record, grpid) +
	   FIELD_SIZE(iopfmap_fault_record, ctx_id) +
	   FIELD_SIZE(iopfmap_fault_record, dev_id) +
	   FIELD_SIZE(iopfmap_fault_record, range_id) +
	   FIELD_SIZE(iopfmap_fault_record, __reserved),
	   iopfmap_fault_record_padding);
CHECK_ALIGN(iopfmap_fault_record);

CHECK_FIELD(iopfmap_fault_response, cookie, 0, 8);
CHECK_FIELD(iopfmap_fault_response, code, 8, 4);
CHECK_FIELD(iopfmap_fault_response, __reserved, 12, 4);
ABI_ASSERT(sizeof(struct iopfmap_fault_response) == 16, iopfmap_fault_response_size);
ABI_ASSERT(sizeof(struct iopfmap_fault_response) ==
	   FIELD_SIZE(iopfmap_fault_response, cookie) +
	   FIELD_SIZE(iopfmap_fault_response, code) +
	   FIELD_SIZE(iopfmap_fault_response, __reserved),
	   iopfmap_fault_response_padding);
CHECK_ALIGN(iopfmap_fault_response);

CHECK_FIELD(iopfmap_queue_fetch, records, 0, 8);
CHECK_FIELD(iopfmap_queue_fetch, slot, 8, 2);
CHECK_FIELD(iopfmap_queue_fetch, max_records, 10, 2);
CHECK_FIELD(iopfmap_queue_fetch, flags, 12, 4);
ABI_ASSERT(sizeof(struct iopfmap_queue_fetch) == 16, iopfmap_queue_fetch_size);
ABI_ASSERT(sizeof(struct iopfmap_queue_fetch) ==
	   FIELD_SIZE(iopfmap_queue_fetch, records) +
	   FIELD_SIZE(iopfmap_queue_fetch, slot) +
	   FIELD_SIZE(iopfmap_queue_fetch, max_records) +
	   FIELD_SIZE(iopfmap_queue_fetch, flags),
	   iopfmap_queue_fetch_padding);
CHECK_ALIGN(iopfmap_queue_fetch);

CHECK_FIELD(iopfmap_queue_commit, cookie, 0, 8);
CHECK_FIELD(iopfmap_queue_commit, slot, 8, 2);
CHECK_FIELD(iopfmap_queue_commit, code, 10, 2);
CHECK_FIELD(iopfmap_queue_commit, flags, 12, 4);
ABI_ASSERT(sizeof(struct iopfmap_queue_commit) == 16, iopfmap_queue_commit_size);
ABI_ASSERT(sizeof(struct iopfmap_queue_commit) ==
	   FIELD_SIZE(iopfmap_queue_commit, cookie) +
	   FIELD_SIZE(iopfmap_queue_commit, slot) +
	   FIELD_SIZE(iopfmap_queue_commit, code) +
	   FIELD_SIZE(iopfmap_queue_commit, flags),
	   iopfmap_queue_commit_padding);
CHECK_ALIGN(iopfmap_queue_commit);

int main(void)
{
	printf("TAP version 13\n1..1\nok 1 uapi header layout\n");
	return 0;
}
