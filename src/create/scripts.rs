//! The schema scripts: pg_dump writes pre-data, post-data and the drop
//! list from the same exported snapshot while the rows are dumped.

use super::workers::Workers;
use super::CreateError;
use crate::snapshot::manifest::SchemaFiles;
use crate::snapshot::{FileEntry, SnapshotWriter};
use crate::source::pg_dump::{PgDump, Section};

/// Where the scripts go in a snapshot.
pub fn files() -> SchemaFiles {
    SchemaFiles {
        pre_data: "schema/pre-data.sql".into(),
        post_data: "schema/post-data.sql".into(),
        clean: "schema/clean.sql".into(),
    }
}

/// Runs pg_dump for each section into its file. A failure stops the
/// workers too.
pub async fn write(
    dumper: &PgDump<'_>,
    schema: &SchemaFiles,
    writer: &SnapshotWriter<'_>,
    workers: &Workers<'_>,
) -> Result<Vec<FileEntry>, CreateError> {
    let mut files = Vec::new();
    for (section, path) in
        [(Section::PreData, &schema.pre_data), (Section::PostData, &schema.post_data), (Section::Clean, &schema.clean)]
    {
        let written = async {
            let bytes = dumper.run(section).await?;
            let mut file = writer.create(path).await?;
            file.write(&bytes).await?;
            Ok::<_, CreateError>(file.finish().await?)
        };
        match written.await {
            Ok(f) => files.push(f),
            Err(e) => {
                workers.stop();
                return Err(e);
            }
        }
    }
    Ok(files)
}
