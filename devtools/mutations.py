"""The targeted breakages that ``devtools.mutate`` applies one at a time; each must make its tests fail.

A mutation names one exact snippet (it must occur once in the file), its replacement, the tests that guard
that behaviour, and why the behaviour matters. Keep the tests narrow (a file or a test) so a run stays
quick; add a mutation whenever a behaviour gets a test of its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    name: str
    area: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    why: str


STORE = "core/deltaglider_core/store.py"
REFS = "core/deltaglider_core/references.py"
T_STORE = "tests/unit/test_store.py"
T_RACES = "tests/unit/test_write_races.py"
T_OPS = "tests/unit/test_operators.py"

MUTATIONS: tuple[Mutation, ...] = (
    # ---------------------------------------------------------------- reads and verification
    Mutation(
        "plain-read-skips-sha256",
        "reads",
        STORE,
        "        _check_hash(self.log, loc, loc.key, expected, actual)\n",
        "        pass\n",
        (T_STORE,),
        "a direct (non-delta) object is returned without its SHA-256 check",
    ),
    Mutation(
        "delta-read-skips-sha256",
        "reads",
        STORE,
        "            _check_hash(self.log, loc, loc.delta_key, expected, actual)\n",
        "            pass\n",
        (T_STORE,),
        "a reconstructed delta is returned without its SHA-256 check",
    ),
    Mutation(
        "verified-without-hash",
        "reads",
        STORE,
        "return GetResult(loc.bucket, loc.key, loc.key, kind, str(out), head.size, actual, expected is not None)",
        "return GetResult(loc.bucket, loc.key, loc.key, kind, str(out), head.size, actual, True)",
        (T_STORE,),
        "an object with no stored hash is reported verified",
    ),
    Mutation(
        "get-leaves-partial-file",
        "reads",
        STORE,
        "        finally:\n            tmp.unlink(missing_ok=True)\n",
        "        finally:\n            pass\n",
        (T_STORE,),
        "a failed read leaves its temporary file beside the destination",
    ),
    Mutation(
        "corrupt-reference-accepted",
        "reads",
        REFS,
        "        if expected is not None and actual != expected:\n            dest.unlink(missing_ok=True)",
        "        if False:\n            dest.unlink(missing_ok=True)",
        (T_STORE,),
        "a reference whose bytes do not match its recorded SHA-256 is used anyway",
    ),
    # ---------------------------------------------------------------- write protocol
    Mutation(
        "reference-create-unconditional",
        "writes",
        REFS,
        "        if not self.s3.upload(path, loc.bucket, key, meta, if_none_match=True):",
        "        if not self.s3.upload(path, loc.bucket, key, meta, if_none_match=False):",
        (T_STORE,),
        "a second first-upload overwrites reference.bin that earlier deltas need",
    ),
    Mutation(
        "vanished-reference-not-restored",
        "writes",
        REFS,
        "        if self.s3.head(bucket, key) is not None:\n            return False",
        "        if True:\n            return False",
        (T_RACES,),
        "a delta is acknowledged while the reference it needs was deleted under it",
    ),
    Mutation(
        "restore-overwrites",
        "writes",
        REFS,
        "        return self.s3.upload(path, bucket, key, meta, if_none_match=True)",
        "        return self.s3.upload(path, bucket, key, meta, if_none_match=False)",
        (T_RACES,),
        "restoring a reference overwrites one another writer has just created",
    ),
    Mutation(
        "delete-ignores-deltas-in-use",
        "writes",
        STORE,
        '            if obj.kind == "delta" and (obj.ref_key or loc.reference_key) == ref_key:\n'
        "                return True",
        "            if False:\n                return True",
        (T_STORE,),
        "deleting one delta removes the reference other deltas still need",
    ),
    Mutation(
        "poor-delta-kept",
        "writes",
        "core/deltaglider_core/policy.py",
        "    return file_size > 0 and delta_size / file_size > max_ratio",
        "    return False",
        (T_STORE,),
        "a delta larger than max_ratio of the file is stored instead of the file",
    ),
    Mutation(
        "delta-metadata-wrong-ref-sha",
        "writes",
        STORE,
        "            ref_sha256=base.sha256,",
        "            ref_sha256=digest.sha256,",
        (T_STORE,),
        "a delta records the wrong reference hash (DeltaGlider readers check it)",
    ),
    Mutation(
        "direct-copy-not-dropped",
        "writes",
        STORE,
        "        dropped = self._side.submit(self.s3.delete, loc.bucket, loc.key)",
        "        dropped = self._side.submit(lambda *a: None, loc.bucket, loc.key)",
        (T_STORE,),
        "re-uploading a key as a delta leaves the older direct copy shadowing it",
    ),
    # ---------------------------------------------------------------- configuration plumbing
    Mutation(
        "hook-drops-max-ratio",
        "config",
        "airflow_provider_deltaglider/hooks/deltaglider.py",
        "                max_ratio=s.max_ratio,",
        "                max_ratio=None,",
        ("tests/unit/test_hook.py",),
        "the connection's max_ratio extra never reaches the store",
    ),
    Mutation(
        "upload-operator-drops-max-ratio",
        "config",
        "airflow_provider_deltaglider/operators/upload.py",
        "            result = store.put(item.path, bucket, base + item.name, max_ratio=ratio(self.max_ratio))",
        "            result = store.put(item.path, bucket, base + item.name, max_ratio=None)",
        (T_OPS,),
        "the upload operator's max_ratio argument is ignored",
    ),
    Mutation(
        "env-max-ratio-ignored",
        "config",
        "core/deltaglider_core/config.py",
        '    raw = _env(env).get("DG_MAX_RATIO")',
        "    raw = None",
        (T_STORE,),
        "DG_MAX_RATIO is ignored",
    ),
    # ---------------------------------------------------------------- local paths
    Mutation(
        "symlink-escape-allowed",
        "paths",
        "core/deltaglider_core/paths.py",
        "    if root != target and root not in target.parents:",
        "    if False:",
        ("tests/unit/test_paths.py",),
        "a key under a symlinked directory writes outside the destination",
    ),
    Mutation(
        "dotdot-allowed",
        "paths",
        "core/deltaglider_core/paths.py",
        '    if any(part in ("..", ".") for part in relative_key.split("/")) or not relative_key:',
        "    if not relative_key:",
        ("tests/unit/test_paths.py",),
        "a key with '..' segments is accepted (the resolved-path check must still refuse it)",
    ),
    # ---------------------------------------------------------------- sync, releases, sensor
    Mutation(
        "sync-never-sees-changes",
        "sync",
        "core/deltaglider_core/sync.py",
        "    stat = local.stat()\n    if remote.original_size",
        "    return False\n    stat = local.stat()\n    if remote.original_size",
        ("tests/unit/test_sync.py",),
        "a changed file is never re-synced",
    ),
    Mutation(
        "sync-mtime-direction",
        "sync",
        "core/deltaglider_core/sync.py",
        "    return remote.last_modified > local_time if remote_is_newer else local_time > remote.last_modified",
        "    return False",
        ("tests/unit/test_sync.py",),
        "without a stored hash, a file changed in place with the same size is never re-synced",
    ),
    Mutation(
        "newest-release-wrong-object",
        "releases",
        "core/deltaglider_core/releases.py",
        "        info = store.head(query.bucket, releases[-1].key)",
        "        info = store.head(query.bucket, releases[0].key)",
        ("tests/unit/test_releases.py",),
        "the newest release reports another release's sha256 and size",
    ),
    Mutation(
        "releases-by-mtime",
        "releases",
        "core/deltaglider_core/releases.py",
        "    return (version is not None, version or Version((), 0, 0, 0), stamp, obj.key)",
        "    return (stamp, obj.key)",
        ("tests/unit/test_releases.py",),
        "releases are ordered by upload time instead of version",
    ),
    Mutation(
        "sensor-swallows-trigger-error",
        "sensor",
        "airflow_provider_deltaglider/sensors/release.py",
        '            raise error(f"Waiting for a release in {self.location} failed: {message}")',
        "            return None",
        ("tests/unit/test_sensor.py",),
        "a deferred sensor whose trigger failed succeeds with no XCom",
    ),
    Mutation(
        "sensor-retries-final-trigger-error",
        "sensor",
        "airflow_provider_deltaglider/sensors/release.py",
        "            error = AirflowFailException if final else AirflowException",
        "            error = AirflowException",
        ("tests/unit/test_sensor.py",),
        "a deferred sensor spends its retries on a trigger error no retry can fix (e.g. a missing bucket)",
    ),
    # ---------------------------------------------------------------- operators and preflight
    Mutation(
        "final-errors-spend-retries",
        "operators",
        "airflow_provider_deltaglider/operators/base.py",
        "            raise AirflowFailException(str(exc)) from exc",
        "            raise",
        ("tests/unit/test_operator_conventions.py",),
        "a missing bucket or bad URL is retried (retries and retry delay spent on a certain failure)",
    ),
    Mutation(
        "download-mode-0600",
        "operators",
        STORE,
        "            os.chmod(tmp, new_file_mode())",
        "            pass",
        ("tests/unit/test_operator_conventions.py",),
        "downloaded files stay 0600 whatever the umask",
    ),
    Mutation(
        "preflight-fail-mode-warns",
        "preflight",
        "core/deltaglider_core/ec2.py",
        '    if mode == "fail" and outcome.is_mismatch:',
        '    if mode == "never" and outcome.is_mismatch:',
        ("tests/unit/test_preflight.py",),
        "ec2_region_check='fail' lets a cross-region task move data",
    ),
    Mutation(
        "download-ignores-refused-keys",
        "operators",
        "airflow_provider_deltaglider/operators/download.py",
        "        if refused:\n            raise AirflowException(",
        "        if False:\n            raise AirflowException(",
        (T_OPS,),
        "a download that refused unsafe keys reports success",
    ),
    Mutation(
        "migrate-recopies-everything",
        "migrate",
        "core/deltaglider_core/migrate.py",
        "                if self._already_there(obj, dest_key, existing):",
        "                if False:",
        ("tests/unit/test_migrate.py",),
        "a re-run migration copies everything again instead of resuming",
    ),
    Mutation(
        "stats-no-orphans",
        "stats",
        "core/deltaglider_core/stats.py",
        "OrphanedReference(k, size) for k, size in sorted(space.ref_keys.items()) if k not in space.used_refs",
        "OrphanedReference(k, size) for k, size in sorted(space.ref_keys.items()) if False",
        (T_OPS,),
        "stats never reports orphaned references",
    ),
    # ---------------------------------------------------------------- transport
    Mutation(
        "sigv4-drops-session-token",
        "transport",
        "core/deltaglider_core/sigv4.py",
        '            headers["x-amz-security-token"] = creds.token',
        "            pass",
        ("tests/unit/test_sigv4.py",),
        "requests signed with temporary credentials omit the session token",
    ),
    Mutation(
        "fast-list-stops-after-first-page",
        "transport",
        "core/deltaglider_core/s3.py",
        '            if not raw.get("IsTruncated") or not token:',
        "            if True:",
        ("tests/integration/test_fast_http.py",),
        "a listing on the fast transport stops after its first page",
    ),
    Mutation(
        "fast-list-keys-not-decoded",
        "transport",
        "core/deltaglider_core/fast_http.py",
        '                    "Key": unquote(fields[_KEY]),',
        '                    "Key": fields[_KEY],',
        ("tests/integration/test_fast_http.py",),
        "listed keys with odd characters come back URL-encoded",
    ),
    Mutation(
        "fast-head-missing-as-error",
        "transport",
        "core/deltaglider_core/fast_http.py",
        "        if response.status == 404:\n            self.answered += 1\n            return True, None",
        "        if response.status == 404:\n            return False, None",
        ("tests/integration/test_fast_http.py",),
        "a missing key is not answered on the fast path (every miss costs a boto3 round trip)",
    ),
    Mutation(
        "wire-ignores-chunked",
        "transport",
        "core/deltaglider_core/wire.py",
        '"chunked" in',
        '"never" in',
        ("tests/unit/test_wire.py",),
        "chunked response bodies are misread",
    ),
    # ---------------------------------------------------------------- added with issues #13 and #14
    Mutation(
        "delta-verified-without-hash",
        "reads",
        STORE,
        '"delta", str(out), size, actual, expected is not None)',
        '"delta", str(out), size, actual, True)',
        (T_STORE,),
        "a delta with no recorded hash is reported verified",
    ),
    Mutation(
        "lzma-secondary-unread",
        "reads",
        "core/deltaglider_core/vcdiff.py",
        "    if compressor == 2:\n        return _LzmaSections(name).decode",
        "    if compressor == 99:\n        return _LzmaSections(name).decode",
        ("tests/unit/test_xdelta3_fixtures.py", "tests/unit/test_deltaglider_bucket.py"),
        "deltas written by Debian's xdelta3 (LZMA secondary compression) cannot be read",
    ),
    Mutation(
        "non-ascii-name-in-metadata",
        "writes",
        "core/deltaglider_core/format.py",
        '            meta_key("original-name"): meta_text(original_name),\n'
        '            meta_key("file-size"): str(size),\n            meta_key("ref-key")',
        '            meta_key("original-name"): original_name,\n'
        '            meta_key("file-size"): str(size),\n            meta_key("ref-key")',
        (T_STORE,),
        "a file with a non-ASCII name cannot be stored as a delta",
    ),
    Mutation(
        "listing-resumes-through-paginator",
        "transport",
        "core/deltaglider_core/s3.py",
        "                raw = self.client.list_objects_v2(**params)\n            yield raw",
        '                yield from self.client.get_paginator("list_objects_v2").paginate(\n'
        '                    **args, PaginationConfig={"StartingToken": token} if token else {}\n'
        "                )\n                return\n            yield raw",
        ("tests/integration/test_listing_resume.py",),
        "a listing that falls back to boto3 mid-way skips keys or drops folders (botocore's token format)",
    ),
    Mutation(
        "migration-copies-references",
        "migrate",
        "core/deltaglider_core/migrate.py",
        "                    self._internal += 1\n                    continue",
        "                    logical = obj.key",
        ("tests/unit/test_migrate.py",),
        "migrating a DeltaGlider prefix copies its references as if they were user files",
    ),
    Mutation(
        "upload-collisions-overwrite",
        "operators",
        "airflow_provider_deltaglider/operators/sources.py",
        "    _refuse_collisions(list(found.values()), keep_paths)\n",
        "",
        ("tests/unit/test_upload_sources.py",),
        "two files with one name in different folders overwrite each other",
    ),
    Mutation(
        "asset-name-keeps-slash",
        "operators",
        "airflow_provider_deltaglider/assets.py",
        "    return Asset(name=uri, uri=uri, **kwargs)",
        "    return Asset(name=location, uri=uri, **kwargs)",
        ("tests/unit/test_assets.py",),
        "an upload's asset is named with its trailing slash, so a consumer on the canonical URI is not run",
    ),
    Mutation(
        "aws-session-extras-ignored",
        "config",
        "airflow_provider_deltaglider/hooks/session.py",
        '    if settings.conn_type == "aws" and amazon_provider_installed():',
        '    if settings.conn_type == "never" and amazon_provider_installed():',
        ("tests/unit/test_aws_connection.py",),
        "an assume-role aws connection runs as the worker's own identity",
    ),
    Mutation(
        "local-file-folder-clash-written",
        "paths",
        "core/deltaglider_core/paths.py",
        "        if rel in folders:",
        "        if False:",
        ("tests/unit/test_local_targets.py",),
        "keys p/a and p/a/b write dest/a/a and re-transfer every run",
    ),
    Mutation(
        "sweep-removes-live-dirs",
        "writes",
        "core/deltaglider_core/scratch.py",
        "        if pid == os.getpid() or owner_alive(pid, made):",
        "        if pid == os.getpid():",
        ("tests/unit/test_scratch.py",),
        "the stale-dir sweep removes a live process's work dir (its decrypted references) under it",
    ),
    Mutation(
        "store-close-keeps-work-dir",
        "writes",
        STORE,
        "        atexit.unregister(self._cleanup)\n        self._cleanup()",
        "        atexit.unregister(self._cleanup)",
        ("tests/unit/test_lifecycle.py",),
        "a closed store leaves its work dir (decrypted references) until the process exits",
    ),
)
