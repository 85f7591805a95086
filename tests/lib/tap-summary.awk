#!/usr/bin/awk -f
# SPDX-License-Identifier: GPL-2.0
#
# Counts the results in run_tests.sh output (TAP 13 with each program's
# own TAP indented by "# "). Every leaf test counts once. A program that
# failed without a failing leaf (crash, timeout, kernel splat), a program
# that never finished, and a program of the plan that never ran each count
# as one failure, so an incomplete run can never look like a pass.
#
# Prints "PASS FAIL SKIP" on the first line, then one "failed: NAME" line
# per failure.

function fail(name) {
	nfail++
	failed[nfail] = name
}

function close_prog() {
	if (prog != "")
		fail(prog " (did not finish)")
	prog = ""
}

/^1\.\.[0-9]+/ && plan == "" {
	plan = substr($0, 4) + 0
	next
}

/^# selftests: iopfmap: / {
	close_prog()
	started++
	prog = substr($0, length("# selftests: iopfmap: ") + 1)
	leaves = 0
	leaf_fail = 0
	next
}

prog != "" && /^# (not )?ok [0-9]+/ {
	leaves++
	line = substr($0, 3)
	if (line ~ /# [Ss][Kk][Ii][Pp]/) {
		nskip++
	} else if (line ~ /^not ok/) {
		leaf_fail++
		sub(/^not ok [0-9]+ /, "", line)
		fail(prog ": " line)
	} else {
		npass++
	}
	next
}

/^(not )?ok [0-9]+ selftests: iopfmap: / {
	if ($0 ~ /^not ok/) {
		if (!leaf_fail) {
			why = $0
			sub(/^.* # /, "", why)
			fail(prog " (" why ")")
		}
	} else if (!leaves) {
		if ($0 ~ /# SKIP/)
			nskip++
		else
			npass++
	}
	prog = ""
	next
}

END {
	close_prog()
	if (plan == "")
		fail("no test output (the guest did not boot or the runner did not start)")
	else if (started < plan)
		fail((plan - started) " of " plan " test programs did not start")
	printf "%d %d %d\n", npass, nfail, nskip
	for (i = 1; i <= nfail; i++)
		print "failed: " failed[i]
}
