"""Audit actions, declared once. Names are dotted and never change: the DPO's queries rely on them."""

ACTIONS = {
    "records.consulted": "personal data was returned to the caller",
    "records.delivered": "personal data was pushed to a subscriber (registryEvents, over WebSocket)",
    "access.refused": "a request was refused (FORBIDDEN, PURPOSE_REQUIRED) before or while reading",
    "subjects.searched": "subjects were searched by name or reference (the search text and the subjects found)",
    "lookup.performed": "a partner asked whether a national number is known (hit/no-hit)",
    "subject.duplicate_refused": "a file was refused because its national number is registered (the existing file is named)",
    "subject.created": "a subject file was registered",
    "subject.updated": "a subject file was changed",
    "referral.drafted": "a referral was drafted",
    "referral.submitted": "a referral was submitted to the threat analysts",
    "referral.acknowledged": "a referral was acknowledged",
    "referral.closed": "a referral was closed",
    "note.added": "a follow-up note was added",
    "note.corrected": "a follow-up note was corrected by a new note",
    "assessment.drafted": "a threat assessment was drafted",
    "assessment.updated": "a draft threat assessment was changed",
    "assessment.validated": "a threat assessment was validated (four-eyes)",
    "break_glass.reviewed": "the DPO reviewed a break-glass access",
    "subject.erased": "a subject's personal data was erased at the end of retention",
    "subject.exported": "everything held on a subject was exported for a subject access request",
}
