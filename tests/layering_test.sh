#!/usr/bin/env bash
# The layers of src/ point one way. Every #include "F/..." in a file under
# src/ names a folder at or before the file's own folder in the order below
# (generated gradientd/v1/*.pb.h is allowed everywhere), and each
# gradientd_<folder> target in src/CMakeLists.txt links only targets of
# earlier folders (plus gradientd_proto, gradientd_warnings and external
# targets). Prints every violation; fails if there is one.
#
#   bash tests/layering_test.sh [SOURCE_DIR]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
layers=(core util metrics protocol storage jetstream recording service durable cluster auth tls server http app client cli)

# The position of folder $1 in the order, or -1.
rank() {
  local i
  for i in "${!layers[@]}"; do
    if [ "${layers[$i]}" = "$1" ]; then
      echo "$i"
      return
    fi
  done
  echo -1
}

# The folders at or before position $1, for messages.
allowed_up_to() {
  echo "${layers[@]:0:$(($1 + 1))}"
}

violations=0
report() {
  echo "$1"
  violations=$((violations + 1))
}

# Includes.
checked_files=0
while IFS= read -r -d '' file; do
  relative=${file#"$root"/}
  folder=${relative#src/}
  folder=${folder%%/*}
  own=$(rank "$folder")
  if [ "$own" -lt 0 ]; then
    report "$relative: folder $folder is not in the layer order (${layers[*]})"
    continue
  fi
  checked_files=$((checked_files + 1))
  while IFS= read -r included; do
    [[ $included == */* ]] || continue
    [[ $included == gradientd/v1/*.pb.h ]] && continue
    target=${included%%/*}
    theirs=$(rank "$target")
    if [ "$theirs" -lt 0 ] || [ "$theirs" -gt "$own" ]; then
      report "$relative: includes $included (folder $folder may include only: $(allowed_up_to "$own"))"
    fi
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$file")
done < <(find "$root/src" -mindepth 2 -type f \( -name '*.h' -o -name '*.cc' \) -print0 | sort -z)

# CMake link lines: each target_link_libraries(gradientd_<folder> ...) call,
# joined onto one line.
cmake_file=$root/src/CMakeLists.txt
while IFS= read -r call; do
  read -r -a words <<<"$call"
  name=${words[0]}
  folder=${name#gradientd_}
  own=$(rank "$folder")
  if [ "$own" -lt 0 ]; then
    report "src/CMakeLists.txt: target $name is not a folder in the layer order (${layers[*]})"
    continue
  fi
  for word in "${words[@]:1}"; do
    case $word in
      PUBLIC | PRIVATE | INTERFACE | gradientd_proto | gradientd_warnings) continue ;;
      gradientd_*) ;;
      *) continue ;;  # an external target
    esac
    linked=${word#gradientd_}
    theirs=$(rank "$linked")
    if [ "$theirs" -lt 0 ] || [ "$theirs" -ge "$own" ]; then
      earlier=$([ "$own" -gt 0 ] && allowed_up_to $((own - 1)) || echo "none")
      report "src/CMakeLists.txt: $name links $word (target $name may link only: gradientd_proto gradientd_warnings and the targets of $earlier)"
    fi
  done
done < <(sed 's/#.*//' "$cmake_file" | tr '\n' ' ' | grep -o 'target_link_libraries([^)]*)' |
  sed 's/^target_link_libraries(//; s/)$//' | grep '^[[:space:]]*gradientd_' || true)

if [ "$checked_files" -eq 0 ]; then
  echo "layering: no source files found under $root/src"
  exit 1
fi
if [ "$violations" -gt 0 ]; then
  echo "layering: $violations violation(s) of the layer order: ${layers[*]}"
  exit 1
fi
echo "layering: $checked_files files and src/CMakeLists.txt follow the layer order: ${layers[*]}"
