"""Knowledge collections in the browser: the collections, a collection's documents with their
ingestion progress, adding a document (typed or uploaded), and a search box that shows the
ranked chunks, all through the same services and ingestion queue as the API."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import ValidationError

from promptlogic.db.engine import SessionDep
from promptlogic.errors import Problem
from promptlogic.knowledge import service
from promptlogic.knowledge.embeddings import Embedders
from promptlogic.knowledge.ingestion import enqueue_ingestion
from promptlogic.knowledge.schemas import CollectionCreate, DocumentIn
from promptlogic.prompts.binding_schemas import NAMESPACE_PATTERN
from promptlogic.ui.web import Editor, Reader, flash, page, redirect

router = APIRouter()

PAGE_SIZE = 100
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
CollectionName = Annotated[str, Path(pattern=NAMESPACE_PATTERN)]


def _embedders(request: Request) -> Embedders:
    return Embedders(request.app.state.providers)


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    )


@router.get("/knowledge")
async def collections(request: Request, member: Reader, session: SessionDep) -> Response:
    found, _ = await service.list_collections(session, tenant_id=member.tenant.id, limit=PAGE_SIZE)
    counts = await service.counts_of(
        session, tenant_id=member.tenant.id, collection_ids=[c.id for c in found]
    )
    rows = [(collection, counts[collection.id]) for collection in found]
    return page(request, "knowledge/collections.html", {"rows": rows, "error": None})


@router.post("/knowledge")
async def create_collection(
    request: Request,
    member: Editor,
    session: SessionDep,
    name: Annotated[str, Form(max_length=200)],
) -> Response:
    try:
        body = CollectionCreate(name=name.strip())
        await service.create_collection(
            session,
            tenant_id=member.tenant.id,
            body=body,
            embedders=_embedders(request),
            actor=member.actor,
        )
    except (ValidationError, Problem) as exc:
        await session.rollback()
        message = _errors(exc) if isinstance(exc, ValidationError) else exc.detail
        status = 422 if isinstance(exc, ValidationError) else exc.status
        context = {"rows": [], "error": message}
        return page(request, "knowledge/collections.html", context, status_code=status)
    return flash(request, redirect(f"/ui/knowledge/{body.name}"), f"Created `{body.name}`.")


async def _collection_page(
    request: Request,
    member: Any,
    session: SessionDep,
    name: str,
    *,
    query: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    collection = await service.get_collection(session, tenant_id=member.tenant.id, name=name)
    documents, _ = await service.list_documents(
        session, tenant_id=member.tenant.id, collection=name, limit=PAGE_SIZE
    )
    hits, search_error = [], None
    if query:
        try:
            hits = await service.search(
                session,
                tenant_id=member.tenant.id,
                collection=name,
                query=query,
                k=10,
                filter=None,
                embedders=_embedders(request),
                field="query",
            )
        except Problem as problem:
            search_error = problem.detail
    context = {
        "collection": collection,
        "documents": documents,
        "query": query,
        "hits": hits,
        "search_error": search_error,
        "error": error,
        "ingesting": any(d.status in ("pending", "processing") for d in documents),
    }
    return page(request, "knowledge/collection.html", context, status_code=status_code)


@router.get("/knowledge/{collection}")
async def collection_page(
    request: Request,
    member: Reader,
    session: SessionDep,
    collection: CollectionName,
    q: Annotated[str, Query(max_length=2000)] = "",
) -> Response:
    return await _collection_page(request, member, session, collection, query=q.strip())


@router.post("/knowledge/{collection}/documents")
async def add_document(
    request: Request,
    member: Editor,
    session: SessionDep,
    collection: CollectionName,
    document_id: Annotated[str, Form(max_length=300)],
    format: Annotated[str, Form(max_length=20)] = "text",
    text: Annotated[str, Form(max_length=1_000_000)] = "",
    metadata: Annotated[str, Form(max_length=20_000)] = "",
    file: UploadFile | None = None,
) -> Response:
    """Add (or replace) a document typed in the form or uploaded as a file (.txt, .md, .pdf)."""
    try:
        fields: dict[str, Any] = {"id": document_id.strip(), "format": format}
        if metadata.strip():
            fields["metadata"] = json.loads(metadata)
        if file is not None and file.filename:
            content = await file.read(MAX_UPLOAD_BYTES + 1)
            if len(content) > MAX_UPLOAD_BYTES:
                raise ValueError(f"the file is over {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB")
            if file.filename.lower().endswith(".pdf"):
                fields["format"] = "pdf"
                fields["content_base64"] = base64.b64encode(content).decode()
            else:
                if file.filename.lower().endswith((".md", ".markdown")):
                    fields["format"] = "markdown"
                fields["text"] = content.decode("utf-8")
        else:
            fields["text"] = text
        body = DocumentIn(**fields)
        added = await service.add_document(
            session,
            tenant_id=member.tenant.id,
            collection=collection,
            body=body,
            actor=member.actor,
        )
        if added.changed:
            await enqueue_ingestion(
                session, request.app.state.sessionmaker, _embedders(request), added.document
            )
    except (ValueError, ValidationError, Problem) as exc:
        await session.rollback()
        if isinstance(exc, Problem):
            if exc.status == 404:
                raise
            message, status = exc.detail, exc.status
        elif isinstance(exc, ValidationError):
            message, status = _errors(exc), 422
        else:
            message, status = f"{exc}", 422
        return await _collection_page(
            request, member, session, collection, error=message, status_code=status
        )
    note = "queued for ingestion" if added.changed else "unchanged"
    return flash(request, redirect(f"/ui/knowledge/{collection}"), f"`{body.id}`: {note}.")


@router.post("/knowledge/{collection}/documents/delete")
async def delete_document(
    request: Request,
    member: Editor,
    session: SessionDep,
    collection: CollectionName,
    document_id: Annotated[str, Form(max_length=300)],
) -> Response:
    await service.delete_document(
        session,
        tenant_id=member.tenant.id,
        collection=collection,
        document_id=document_id,
        actor=member.actor,
    )
    return flash(request, redirect(f"/ui/knowledge/{collection}"), f"Deleted `{document_id}`.")
