# Sourced by wheels.sh and test_wheels.sh: the CPythons llmbridge supports and where to find them.
# LLMBRIDGE_WHEEL_PYTHONS narrows the list ("3.9 3.13"); pyproject's requires-python and
# docs/install.md name the same versions.
llmbridge_pythons=${LLMBRIDGE_WHEEL_PYTHONS:-"3.9 3.10 3.11 3.12 3.13"}

# find_python 3.X: prints the path of a working python3.X, pyenv's newest first
# ($PYENV_ROOT/versions/3.X.*), then PATH's.
find_python() {
  local v=$1 c
  local candidates=()
  while IFS= read -r c; do candidates+=("$c"); done < <(
    ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$v".*/bin/"python$v" 2>/dev/null | sort -rV)
  c=$(command -v "python$v" 2>/dev/null) && candidates+=("$c")
  for c in "${candidates[@]}"; do
    if "$c" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$v'.split('.'))))" \
      2>/dev/null; then
      echo "$c"
      return 0
    fi
  done
  return 1
}
