#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# checkpatch.pl --strict (from Debian's linux-source-6.12) over the module,
# the selftests' edu driver (kmod/testdev) and the uapi header. Fails on
# any error, warning or check.

set -euo pipefail
# shellcheck source=tools/lib.sh
. "$(dirname "$0")/lib.sh"

ksrc=$("$top/tools/ksrc.sh" 6.12)
cd "$top"
opts=(--no-tree --strict --terse --show-types --max-line-length=80)
mapfile -t files < <(ls kmod/*.[ch] kmod/Kbuild kmod/*.sh include/uapi/linux/*.h \
	kmod/testdev/*.c kmod/testdev/Kbuild kmod/testdev/*.sh 2> /dev/null |
	grep -v '_trace\.h$')
# Trace event headers are written in the TRACE_EVENT() layout of the
# kernel's include/trace/events/, which these two checks do not know.
mapfile -t trace_files < <(ls kmod/*_trace.h 2> /dev/null)
# kmod/testdev's ioctl header is included by userspace too: like for
# include/uapi (which checkpatch recognizes by its path), BIT() is not
# available there.
mapfile -t uapi_files < <(ls kmod/testdev/*.h 2> /dev/null)
{
	"$ksrc/scripts/checkpatch.pl" "${opts[@]}" -f "${files[@]}" || true
	"$ksrc/scripts/checkpatch.pl" "${opts[@]}" --ignore BIT_MACRO \
		-f "${uapi_files[@]}" || true
	"$ksrc/scripts/checkpatch.pl" "${opts[@]}" \
		--ignore OPEN_ENDED_LINE,PARENTHESIS_ALIGNMENT \
		-f "${trace_files[@]}" || true
} > "$build/checkpatch.log"
grep -v -E '^total: 0 errors, 0 warnings, 0 checks' "$build/checkpatch.log" || true
if grep -q -E '^[^ ]+:[0-9]+: (ERROR|WARNING|CHECK)' "$build/checkpatch.log"; then
	echo "checkpatch: see above" >&2
	exit 1
fi
echo "checkpatch: $(( ${#files[@]} + ${#uapi_files[@]} + ${#trace_files[@]} )) files clean"
