#!/usr/bin/env bash
# Builds the DocC documentation of MoEKit and MoECost (swift-docc-plugin) with warnings as errors, then checks
# that every public symbol of both modules has a doc comment: the symbol graphs the build extracted are read, and
# any public declaration in Sources/ without a /// summary of its own (enum cases, initialisers and properties
# included; a comment inherited from another module's protocol does not count) is listed and fails the run.
#   scripts/docs.sh
# The archives are .build/plugins/Swift-DocC/outputs/{MoEKit,MoECost}.doccarchive, laid out for static hosting:
# serve one (python3 -m http.server --directory .build/plugins/Swift-DocC/outputs/MoEKit.doccarchive) and open
# /documentation/moekit, or preview with `swift package --disable-sandbox preview-documentation --target MoEKit`.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(MoEKit MoECost)

# Fresh symbol graphs only: the coverage check must not read an older build's.
find .build -type d -name extracted-symbols -prune -exec rm -rf {} + 2>/dev/null || true
swift package --disable-sandbox generate-documentation --target MoEKit --target MoECost --warnings-as-errors

graphs=()
for target in "${targets[@]}"; do
    while IFS= read -r file; do graphs+=("$file"); done < <(find .build -path "*/extracted-symbols/*/$target/*.symbols.json")
done
if [ "${#graphs[@]}" -eq 0 ]; then
    echo "docs.sh: no symbol graphs under .build/*/extracted-symbols: cannot check documentation coverage" >&2
    exit 1
fi
python3 - "${graphs[@]}" <<'EOF'
import json, sys
from collections import defaultdict
totals, undocumented, missing = defaultdict(int), defaultdict(int), []
for path in sys.argv[1:]:
    graph = json.load(open(path))
    module = graph["module"]["name"]
    for symbol in graph["symbols"]:
        uri = symbol.get("location", {}).get("uri", "")
        # Synthesized and inherited members (==, hash(into:), Codable, OptionSet …) have no location in Sources/;
        # extension blocks and underscored names are not API pages.
        if f"/Sources/{module}/" not in uri or symbol["kind"]["identifier"] == "swift.extension":
            continue
        if symbol["names"]["title"].startswith("_"):
            continue
        totals[module] += 1
        comment = symbol.get("docComment")
        own = comment is not None and comment.get("module", module) == module
        if not own or not any(line["text"].strip() for line in comment["lines"]):
            undocumented[module] += 1
            line = symbol["location"]["position"]["line"] + 1
            name = ".".join(symbol["pathComponents"])
            missing.append(f"Sources/{uri.split('/Sources/', 1)[1]}:{line}: {symbol['kind']['displayName'].lower()} {name}")
for module in sorted(totals):
    print(f"{module}: {totals[module] - undocumented[module]} of {totals[module]} public symbols documented")
for entry in sorted(missing):
    print(f"undocumented: {entry}", file=sys.stderr)
sys.exit(1 if missing else 0)
EOF

echo "Documentation (open documentation/moekit or documentation/moecost of an archive served over HTTP):"
for target in "${targets[@]}"; do
    echo "  .build/plugins/Swift-DocC/outputs/$target.doccarchive"
done
