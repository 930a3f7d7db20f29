#!/usr/bin/env bash
# Compiles the core module and its tests with kotlinc and runs them with JUnit 4, without Gradle
# or an Android SDK. Needs kotlinc, the Kotlin standard library, JUnit 4 and Hamcrest, for example
# from Debian: apt-get install kotlin junit4. Works from any directory; exits non-zero on failure.
set -euo pipefail

core_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "$core_dir/../.." && pwd)"
golden_dir="${GOLDEN_DIR:-$repo_dir/tests/golden}"
java_dir="${JAVA_LIB_DIR:-/usr/share/java}"

find_jar() {
    local name
    for name in "$@"; do
        if [[ -f "$java_dir/$name" ]]; then
            echo "$java_dir/$name"
            return 0
        fi
    done
    echo "run-tests.sh: none of $* found in $java_dir; install them (Debian: apt-get install kotlin junit4) or set JAVA_LIB_DIR" >&2
    return 1
}

if ! command -v kotlinc >/dev/null; then
    echo "run-tests.sh: kotlinc not found; install it (Debian: apt-get install kotlin)" >&2
    exit 1
fi
stdlib_jar="$(find_jar kotlin-stdlib.jar)"
junit_jar="$(find_jar junit4.jar junit.jar)"
hamcrest_jar="$(find_jar hamcrest-core.jar hamcrest.jar)"
classpath="$stdlib_jar:$junit_jar:$hamcrest_jar"

build_dir="$(mktemp -d "${TMPDIR:-/tmp}/mobile-export-core.XXXXXX")"
trap 'rm -rf "$build_dir"' EXIT

mapfile -t sources < <(find "$core_dir/src/main/kotlin" "$core_dir/src/test/kotlin" -name '*.kt' | sort)
test_classes=()
while IFS= read -r file; do
    if grep -q '@Test' "$file"; then
        name="${file#"$core_dir/src/test/kotlin/"}"
        test_classes+=("$(echo "${name%.kt}" | tr / .)")
    fi
done < <(find "$core_dir/src/test/kotlin" -name '*Test.kt' | sort)

# Main and test sources compile together, so tests see `internal` members as Gradle's test
# source set does.
start=$SECONDS
kotlinc -nowarn -classpath "$classpath" -d "$build_dir" "${sources[@]}" 2> >(grep -v -e 'Xverify:none' -e '^$' >&2)
echo "Compiled ${#sources[@]} files in $((SECONDS - start)) s"

start=$SECONDS
java -Dgolden.dir="$golden_dir" -cp "$build_dir:$classpath" org.junit.runner.JUnitCore "${test_classes[@]}"
echo "Ran tests in $((SECONDS - start)) s"
