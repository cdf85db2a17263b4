# bash completion for gatherd(8)                          -*- shell-script -*-
#
# meson builds this into build/completion/gatherd and installs it into
# bash-completion's completions directory, named after the command, so that
# bash-completion loads it the first time gatherd is completed.  It needs
# bash only (not bash-completion's helpers): `source build/completion/gatherd`
# works too.  At build time scripts/confdoc.py fills in the keys for --set
# from config/gatherd.conf (which a unit test holds against the option table)
# and the error kinds for refetch --error from src/errkind.c.

_gatherd_set_keys='@SET_KEYS@'
_gatherd_error_kinds='@ERROR_KINDS@'

# The options of each command (the daemon's under "daemon"), as
# src/main.c's option table has them.
_gatherd_options() {
	local common='-c --config -h --help'
	case $1 in
	daemon) echo "$common --set --once -V --version" ;;
	check-config) echo "$common --set" ;;
	submit) echo "$common --direct" ;;
	status) echo "$common --json --hosts --check" ;;
	refetch) echo "$common --older-than --url-like --error --state --dry-run" ;;
	prune) echo "$common --older-than --keep-latest --dry-run" ;;
	cat) echo "$common" ;;
	esac
}

_gatherd() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev='' cmd=daemon word
	local IFS=$' \t\n'
	COMPREPLY=()
	if ((COMP_CWORD > 0)); then
		prev=${COMP_WORDS[COMP_CWORD - 1]}
	fi

	# "=" is a word break: "--set=fetch.x" arrives as "--set" "=" "fetch.x",
	# "--set fetch.x=1" as "--set" "fetch.x" "=" "1".
	if [[ $cur == = || $prev == = ]]; then
		if [[ $cur == = ]]; then
			cur=
			word=${COMP_WORDS[COMP_CWORD - 1]}
		else
			word=${COMP_WORDS[COMP_CWORD - 2]}
		fi
		case $word in
		-*) prev=$word ;; # --option=value
		*) return 0 ;;    # the value of a --set key: free text
		esac
	fi

	case $prev in
	-c | --config)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return 0
		;;
	--set)
		compopt -o nospace 2>/dev/null
		local k keys=()
		for k in $_gatherd_set_keys; do
			keys+=("$k=")
		done
		mapfile -t COMPREPLY < <(compgen -W "${keys[*]}" -- "$cur")
		return 0
		;;
	--error)
		mapfile -t COMPREPLY < <(compgen -W "$_gatherd_error_kinds" -- "$cur")
		return 0
		;;
	--state)
		mapfile -t COMPREPLY < <(compgen -W failed -- "$cur")
		return 0
		;;
	--older-than | --url-like)
		return 0
		;;
	esac

	# The command, if any, is the first argument (gatherd wants it there).
	if ((COMP_CWORD == 1)); then
		if [[ $cur != -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W \
				'submit status refetch prune cat check-config' -- "$cur")
			return 0
		fi
	elif [[ ${COMP_WORDS[1]} != -* ]]; then
		cmd=${COMP_WORDS[1]}
	fi
	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$(_gatherd_options "$cmd")" -- "$cur")
	fi
	return 0
}

complete -F _gatherd gatherd
