"""Policy files: the Cedar documents under ``POLICY_PATH`` (and ``policy --policies``), read and
validated against the gateway's schema.

``path`` is one file, or a directory whose ``*.cedar`` files are read in name order (others are
ignored, so a mounted ConfigMap's own entries do not count). Each file is one document whose source
is its file name (see :mod:`llm_gateway.core.policy.documents`).
"""

from __future__ import annotations

from pathlib import Path

from llm_gateway.core.policy.documents import InvalidPolicy, PolicyDocument, compile_policies

__all__ = ["MAX_POLICY_FILE_BYTES", "load_policy_documents"]

#: A policy file larger than this is refused (Cedar policies are text a person writes).
MAX_POLICY_FILE_BYTES = 1 << 20


def load_policy_documents(path: Path) -> tuple[PolicyDocument, ...]:
    """The documents at ``path``, each validated, and together without a clashing policy id.

    Raises ``ValueError`` naming the file and Cedar's message: a file that cannot be read, does not
    parse, or does not validate; a path that does not exist.
    """
    if path.is_dir():
        files = sorted(p for p in path.glob("*.cedar") if p.is_file())
    elif path.is_file():
        files = [path]
    elif path.exists():
        raise ValueError(f"{path}: neither a file nor a directory")
    else:
        raise ValueError(f"{path}: no such file or directory")
    documents = []
    for file in files:
        try:
            if file.stat().st_size > MAX_POLICY_FILE_BYTES:
                raise ValueError(f"{file}: larger than {MAX_POLICY_FILE_BYTES} bytes")
            text = file.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"{file}: cannot be read ({error.__class__.__name__})") from None
        documents.append(PolicyDocument(file.name, text))
    try:
        compile_policies(documents, default_allow=False)
    except InvalidPolicy as error:
        raise ValueError(str(error)) from None
    return tuple(documents)
