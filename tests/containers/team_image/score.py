"""A team's scoring script with nothing of mlbatch: it reads the MLBATCH_* contract with the stdlib only."""
import json
import os
import sys

index = int(os.environ["MLBATCH_SHARD_INDEX"])
count = int(os.environ["MLBATCH_SHARD_COUNT"])
params = json.loads(os.environ["MLBATCH_PARAMS"])
out = os.environ["MLBATCH_OUTPUT"]
mode = sys.argv[1] if len(sys.argv) > 1 else "score"
if os.environ.get("TEAM_ENTRYPOINT") != "ran":
    sys.exit("the image's ENTRYPOINT did not run")
if mode == "nothing":
    sys.exit(0)  # exits 0 yet writes nothing: the step must fail
if sys.argv[2:6] != ["--shard", str(index), "--scale", str(params["scale"])]:
    sys.exit(f"{{shard.index}} or {{params.scale}} not filled in: {sys.argv}")

with open(os.environ["MLBATCH_INPUTS"]) as fh:
    inputs = json.load(fh)
with open(os.path.join(inputs["features"], "manifest.json")) as fh:
    features = json.load(fh)  # the input step's committed manifest: its counts and its files
rows = features["counts"]["rows"]
try:  # an input is readable at its own path, and read-only: no step overwrites what another wrote
    open(os.path.join(inputs["features"], "overwritten.txt"), "w")
except OSError:
    pass
else:
    sys.exit("wrote into its input step's output: the artifact root is not read-only")
with open(features["shards"][0]["outputs"]["features"], "rb") as fh:
    if fh.read(4) != b"PAR1":
        print("the input table is not Parquet", file=sys.stderr)
        sys.exit(65)  # bad input

with open("/opt/team/VERSION") as fh:
    version = int(fh.read())
mine = range(index, rows, count)
with open(os.path.join(out, "part.csv"), "w") as fh:
    fh.write("row_id,score\n")
    fh.writelines(f"{row},{params['scale'] * row / rows:.6f}\n" for row in mine)
with open(os.path.join(out, "metrics.json"), "w") as fh:
    json.dump({"score": params["scale"] * (index + 1), "rows": len(mine), "version": version}, fh)
