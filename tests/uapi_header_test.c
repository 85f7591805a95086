// SPDX-License-Identifier: GPL-2.0
/*
 * Compile-time check of the iopfmap uapi header: it builds on its own (as
 * C99 -pedantic, C11 and C++11), and the layout of every struct and the
 * ioctl numbers are exactly the ABI. A change that breaks a check here
 * breaks binaries built against an older header.
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

#define INFO_FIELD_SIZE(field) sizeof(((struct iopfmap_info *)0)->field)
#define CHECK_INFO_FIELD(field, off, size)					\
	ABI_ASSERT(offsetof(struct iopfmap_info, field) == (off) &&		\
		   INFO_FIELD_SIZE(field) == (size), iopfmap_info_field_##field)

/* The ioctl numbers are ABI as much as the structs are. */
ABI_ASSERT(IOPFMAP_TYPE == 0xE7, iopfmap_type);
ABI_ASSERT(IOPFMAP_CMD_BASE == 0x80, iopfmap_cmd_base);
ABI_ASSERT(IOPFMAP_CMD_GET_INFO == 0x80, iopfmap_cmd_get_info);
ABI_ASSERT(IOPFMAP_GET_INFO == 0xE780, iopfmap_get_info);
ABI_ASSERT(IOPFMAP_ABI_VERSION == 1, iopfmap_abi_version);

CHECK_INFO_FIELD(size, 0, 4);
CHECK_INFO_FIELD(flags, 4, 4);
CHECK_INFO_FIELD(out_abi_version, 8, 4);
CHECK_INFO_FIELD(__reserved, 12, 4);
CHECK_INFO_FIELD(out_features, 16, 8);
CHECK_INFO_FIELD(out_pgsize_bitmap, 24, 8);
ABI_ASSERT(sizeof(struct iopfmap_info) == 32, iopfmap_info_size);
/* No implicit padding, inside or at the end. */
ABI_ASSERT(sizeof(struct iopfmap_info) ==
	   INFO_FIELD_SIZE(size) + INFO_FIELD_SIZE(flags) +
	   INFO_FIELD_SIZE(out_abi_version) + INFO_FIELD_SIZE(__reserved) +
	   INFO_FIELD_SIZE(out_features) + INFO_FIELD_SIZE(out_pgsize_bitmap),
	   iopfmap_info_padding);

/*
 * 8, also on 32-bit x86 where a plain __u64 is 4-aligned. _Alignof is C11,
 * so measure the offset of the struct after a char.
 */
struct iopfmap_info_align {
	char c;
	struct iopfmap_info info;
};
ABI_ASSERT(offsetof(struct iopfmap_info_align, info) == 8, iopfmap_info_align);

int main(void)
{
	printf("TAP version 13\n1..1\nok 1 uapi header layout\n");
	return 0;
}
