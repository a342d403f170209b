-- Applied to the benchmark database only, before PostGraphile starts (idempotent).
-- PostGraphile 4 names both directions of the self-referencing unique key
-- follow_up_note.corrects_id "followUpNoteByCorrectsId" and refuses to start; a smart
-- comment renames the backward one. Neither query of the benchmark uses this relation,
-- and the comment changes nothing for the registry.
COMMENT ON CONSTRAINT fk_follow_up_note_corrects_id_follow_up_note ON follow_up_note
  IS E'@foreignSingleFieldName correctedBy';
