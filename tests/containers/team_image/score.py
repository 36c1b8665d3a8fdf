"""A team's scoring script with nothing of mlbatch: it reads the MLBATCH_* contract with the stdlib only."""
import datetime
import hashlib
import hmac
import json
import os
import sys
import urllib.parse
import urllib.request


def _s3(method, uri, data=b""):
    """One S3 request to the endpoint in AWS_ENDPOINT_URL, signed (SigV4) with the task role's credentials
    from AWS_CONTAINER_CREDENTIALS_FULL_URI, as any AWS client does: the stdlib only."""
    with urllib.request.urlopen(os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]) as response:
        creds = json.loads(response.read())
    endpoint = urllib.parse.urlsplit(os.environ["AWS_ENDPOINT_URL"])
    path = "/" + urllib.parse.quote(uri[len("s3://"):])
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    region = os.environ.get("AWS_REGION", "us-east-1")
    headers = {"host": endpoint.netloc, "x-amz-content-sha256": hashlib.sha256(data).hexdigest(),
               "x-amz-date": stamp, "x-amz-security-token": creds["Token"]}
    names = ";".join(sorted(headers))
    canonical = "\n".join([method, path, "", *(f"{k}:{headers[k]}" for k in sorted(headers)), "", names,
                           headers["x-amz-content-sha256"]])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + creds["SecretAccessKey"]).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={creds['AccessKeyId']}/{scope}, "
                                f"SignedHeaders={names}, Signature={signature}")
    headers["Content-Type"] = "application/octet-stream"  # urllib's default would read as a form
    request = urllib.request.Request(f"{endpoint.scheme}://{endpoint.netloc}{path}", data=data or None,
                                     headers=headers, method=method)
    with urllib.request.urlopen(request) as response:
        return response.read()


def read(uri, size=-1):
    if uri.startswith("s3://"):
        return _s3("GET", uri)[:size] if size >= 0 else _s3("GET", uri)
    with open(uri, "rb") as fh:
        return fh.read(size)


def write(folder, name, text):
    if folder.startswith("s3://"):
        _s3("PUT", f"{folder}/{name}", text.encode())
        return
    with open(os.path.join(folder, name), "w") as fh:
        fh.write(text)


def shard_index():
    """MLBATCH_SHARD_INDEX; in an AWS Batch array child, its place in MLBATCH_SHARD_MAP (docs/image-steps.md)."""
    if "MLBATCH_SHARD_INDEX" in os.environ:
        return int(os.environ["MLBATCH_SHARD_INDEX"])
    child = int(os.environ["AWS_BATCH_JOB_ARRAY_INDEX"])
    listed = os.environ.get("MLBATCH_SHARD_MAP")
    if not listed:
        return child
    shards = [n for part in listed.split(",") for a, _, b in [part.partition("-")] for n in range(int(a), int(b or a) + 1)]
    return shards[child]


index = shard_index()
count = int(os.environ["MLBATCH_SHARD_COUNT"])
params = json.loads(os.environ["MLBATCH_PARAMS"])
out = os.environ.get("MLBATCH_OUTPUT") or f"{os.environ['MLBATCH_STEP_OUTPUT']}/shard-{index:05d}"
mode = sys.argv[1] if len(sys.argv) > 1 else "score"
if os.environ.get("TEAM_ENTRYPOINT") != "ran":
    sys.exit("the image's ENTRYPOINT did not run")
if mode == "nothing":
    sys.exit(0)  # exits 0 yet writes nothing: the step must fail
if "--shard" in sys.argv and sys.argv[2:6] != ["--shard", str(index), "--scale", str(params["scale"])]:
    sys.exit(f"{{shard.index}} or {{params.scale}} not filled in: {sys.argv}")

inputs = json.loads(read(os.environ["MLBATCH_INPUTS"]))
features = json.loads(read(inputs["features"] + "/manifest.json"))  # the input step's counts and files
rows = features["counts"]["rows"]
if not out.startswith("s3://"):
    try:  # an input is readable at its own path, and read-only: no step overwrites what another wrote
        open(os.path.join(inputs["features"], "overwritten.txt"), "w")
    except OSError:
        pass
    else:
        sys.exit("wrote into its input step's output: the artifact root is not read-only")
if read(features["shards"][0]["outputs"]["features"], 4) != b"PAR1":
    print("the input table is not Parquet", file=sys.stderr)
    sys.exit(65)  # bad input

with open("/opt/team/VERSION") as fh:
    version = int(fh.read())
mine = range(index, rows, count)
write(out, "part.csv", "row_id,score\n" + "".join(f"{row},{params['scale'] * row / rows:.6f}\n" for row in mine))
write(out, "metrics.json", json.dumps({"score": params["scale"] * (index + 1), "rows": len(mine), "version": version}))
