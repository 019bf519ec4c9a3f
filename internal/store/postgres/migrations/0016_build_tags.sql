-- 0016: the tags a template build gets once ready (JSON; NULL: the default tag). A
-- tagged build is kept as a template row of its own, id '<template>:<tag>'.
ALTER TABLE template_builds ADD COLUMN tags TEXT;
