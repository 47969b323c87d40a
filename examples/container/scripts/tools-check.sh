#!/bin/sh
# A task's script from the scripts volume: prints the versions of the tools the image adds.
set -eu
curl --version | head -n 1
git --version
rsync --version | head -n 1
