# Sourced by the live CLI tests: tunables prints every KSM tunable of
# /sys/kernel/mm/ksm as name=value, one a line (those this kernel has), to
# compare before and after a command that must restore them.
tunables() {
	local f ksm=/sys/kernel/mm/ksm
	for f in run pages_to_scan sleep_millisecs merge_across_nodes use_zero_pages \
		max_page_sharing smart_scan advisor_mode advisor_max_cpu advisor_min_pages_to_scan \
		advisor_max_pages_to_scan advisor_target_scan_time stable_node_chains_prune_millisecs; do
		[ -e "$ksm/$f" ] && echo "$f=$(cat "$ksm/$f")"
	done
}
