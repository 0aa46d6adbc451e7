"""1EdTech CASE 1.1 packages to and from framework documents (pure: plain values, no I/O).

The public face of the CASE mapping; its three parts live beside it:

- ``case_model``: the wire format, lenient models of a CFPackage and its objects;
- ``case_export``: a framework version as a CFPackage, CFDocument or CFItem, with identifiers
  derived from the owner tenant, key, version and element (``CaseIds``);
- ``case_import``: any CFPackage as a framework document, with a report of what was not kept.
"""

from app.interop.case_export import (
    CaseIds,
    ExportContext,
    cf_document,
    cf_item,
    document_to_package,
    identifiers,
)
from app.interop.case_import import REPORT_MAX, ImportResult, ReportEntry, package_to_document
from app.interop.case_model import EXT, CFDocument, CFDocumentSet, CFItem, CFPackage

__all__ = [
    "EXT",
    "REPORT_MAX",
    "CFDocument",
    "CFDocumentSet",
    "CFItem",
    "CFPackage",
    "CaseIds",
    "ExportContext",
    "ImportResult",
    "ReportEntry",
    "cf_document",
    "cf_item",
    "document_to_package",
    "identifiers",
    "package_to_document",
]
