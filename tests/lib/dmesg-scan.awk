#!/usr/bin/awk -f
# SPDX-License-Identifier: GPL-2.0
#
# Prints the kernel log lines that show a kernel bug: warnings, BUGs,
# oopses, lockdep, RCU and hung-task reports, list and page corruption,
# SLUB debug reports, and DMA faults the IOMMU reported (VT-d, AMD-Vi,
# virtio-iommu). Reads dmesg output on stdin; prints nothing when the log
# is clean.
#
# Which part of the log is scanned:
#   -v start=MARKER  only lines after the last line containing MARKER
#                    (the test runner's per-test marker)
#   -v outside=1     only lines outside the runner's start/end brackets
#                    (what the VM rig checks after the whole run)
# -v allow=FILE: extended regexes, one per line, of lines a test expects;
# matching lines are not reported.
# A test that provokes a kernel log line on purpose (a DMA fault from the
# IOMMU it runs on) says so in the log itself, before it provokes it: a
# record "iopfmap-selftest: expect ERE" makes later lines matching ERE
# expected, up to the end of the scanned part. The test learns which IOMMU
# it runs on and writes that IOMMU's line; the scanner knows none.

BEGIN {
	scanning = (start == "")
	nallow = 0
	if (allow != "") {
		while ((getline re < allow) > 0)
			if (re != "" && re !~ /^#/)
				allowed[nallow++] = re
		close(allow)
	}
	nfile = nallow
	n = 0
}

function bad(line) {
	return line ~ /------------\[ cut here \]------------/ ||
	       line ~ /WARNING:/ ||
	       line ~ /(^|[] ])BUG[: ]/ ||
	       line ~ /kernel BUG at/ ||
	       line ~ /Oops/ ||
	       line ~ /general protection fault/ ||
	       line ~ /Unable to handle kernel/ ||
	       line ~ /Kernel panic/ ||
	       line ~ /Call Trace:/ ||
	       line ~ /list_(add|del) corruption|list corruption/ ||
	       line ~ /Bad page (state|map)/ ||
	       line ~ /INFO: task .* blocked for more than/ ||
	       line ~ /rcu: INFO:|detected stalls? on CPU|self-detected stall/ ||
	       line ~ /possible (circular|recursive) locking|inconsistent lock state/ ||
	       line ~ /suspicious RCU usage|lock held when returning to user/ ||
	       line ~ /UBSAN:|KASAN:|KFENCE:|unreferenced object 0x/ ||
	       line ~ /refcount_t: / ||
	       line ~ /DMAR: \[DMA (Read|Write)|DMAR: DRHD: handling fault/ ||
	       line ~ /Event logged \[IO_PAGE_FAULT/ ||
	       line ~ /(page|domain|unknown) fault from EP [0-9]+/
}

function expected(line,    i) {
	for (i = 0; i < nallow; i++)
		if (line ~ allowed[i])
			return 1
	return 0
}

start != "" && index($0, start) {
	# A later marker with the same text wins: report only the last run.
	scanning = 1
	n = 0
	nallow = nfile
	next
}

outside && /iopfmap-selftest: start / { inside = 1; next }
outside && /iopfmap-selftest: end / { inside = 0; next }

scanning && !inside && /iopfmap-selftest: expect / {
	re = $0
	sub(/.*iopfmap-selftest: expect /, "", re)
	allowed[nallow++] = re
	next
}

scanning && !inside && bad($0) && !expected($0) {
	found[n++] = $0
}

END {
	for (i = 0; i < n; i++)
		print found[i]
}
