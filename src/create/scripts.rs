//! The schema scripts: pg_dump writes pre-data, post-data and the drop
//! list from the same exported snapshot while the rows are dumped.

use super::workers::Workers;
use super::CreateError;
use crate::schema_script;
use crate::snapshot::manifest::SchemaFiles;
use crate::snapshot::{FileEntry, SnapshotWriter};
use crate::source::pg_dump::{PgDump, Section};
use crate::source::SourceError;

/// Where the scripts go in a snapshot.
pub fn files() -> SchemaFiles {
    SchemaFiles {
        pre_data: "schema/pre-data.sql".into(),
        post_data: "schema/post-data.sql".into(),
        clean: "schema/clean.sql".into(),
    }
}

/// The scripts written: their files, and (path, text) of the pre-data and
/// post-data ones for the leak scan.
pub struct Written {
    pub files: Vec<FileEntry>,
    pub texts: Vec<(String, String)>,
}

/// Runs pg_dump for each section into its file, without user mappings
/// (their options hold credentials). A failure stops the workers too.
pub async fn write(
    dumper: &PgDump<'_>,
    schema: &SchemaFiles,
    writer: &SnapshotWriter<'_>,
    workers: &Workers<'_>,
) -> Result<Written, CreateError> {
    let mut files = Vec::new();
    let mut texts = Vec::new();
    for (section, path) in
        [(Section::PreData, &schema.pre_data), (Section::PostData, &schema.post_data), (Section::Clean, &schema.clean)]
    {
        let written = async {
            let bytes = dumper.run(section).await?;
            let Ok(text) = String::from_utf8(bytes) else {
                return Err(CreateError::Source(SourceError::PgDump {
                    section: section.name().to_string(),
                    stderr: "its output is not UTF-8".into(),
                }));
            };
            let (text, removed) = schema_script::without_user_mappings(&text);
            let text = schema_script::portable_settings(&text);
            if removed > 0 {
                tracing::info!(script = %path, "left out {removed} user mapping(s): their options hold credentials");
            }
            let mut file = writer.create(path).await?;
            file.write(text.as_bytes()).await?;
            Ok::<_, CreateError>((file.finish().await?, text))
        };
        match written.await {
            Ok((f, text)) => {
                if section != Section::Clean {
                    texts.push((path.clone(), text));
                }
                files.push(f)
            }
            Err(e) => {
                workers.stop();
                return Err(e);
            }
        }
    }
    Ok(Written { files, texts })
}
