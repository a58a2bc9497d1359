#!/usr/bin/env bash
# Sets critdim up from a clean checkout: installs the Debian packages the build and tests
# need, builds Release into build/, and runs the main job on the embedded default model.
#   scripts/setup.sh            everything
#   scripts/setup.sh --deps     only the packages
#   scripts/setup.sh --build    packages and build, no demo run
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake clang-format clang libclang-rt-14-dev
          nlohmann-json3-dev libcli11-dev libfmt-dev libxxhash-dev
          libgtest-dev libgmock-dev libbenchmark-dev python3-numpy
          pkg-config libpcre2-dev libutf8proc-dev xz-utils
          ccache libcpp-httplib-dev chromium chromium-driver python3-selenium
          python3-pytest pybind11-dev python3-dev slurm-wlm munge)

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ "${1:-}" = "--deps" ] && exit 0

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"

# The Python module: a .pth file in Debian Python's site folder puts build/python on its path,
# so that `/usr/bin/python3 -c "import critdim"` works and follows rebuilds (docs/python.md;
# CRITDIM_PYTHON_SITE=DIR writes the .pth elsewhere).
if [ -d build/python ]; then
  site="${CRITDIM_PYTHON_SITE:-$(/usr/bin/python3 -c 'import sysconfig; print(sysconfig.get_path("purelib"))')}"
  $SUDO mkdir -p "$site"
  echo "$PWD/build/python" | $SUDO tee "$site/critdim.pth" >/dev/null
  /usr/bin/python3 -c 'import site, sys; site.addsitedir(sys.argv[1]); import critdim' "$site"
  echo "setup: /usr/bin/python3 -c 'import critdim' works ($site/critdim.pth -> build/python)"
fi
[ "${1:-}" = "--build" ] && exit 0

# The main job on the embedded default: scan -> find -> explain -> steer on a planted model.
scripts/demo.sh build
