fn main() {
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(
        tauri_build::AppManifest::new().commands(&[
            "get_settings",
            "save_settings",
            "add_folder",
            "pick_folder",
            "remove_folder",
            "status",
            "file_states",
            "file_type_counts",
            "search",
            "related",
            "open_note",
            "reindex",
            "key_status",
            "key_set",
            "key_delete",
            "cost_summary",
            "estimate",
            "export_index",
            "forget_everything",
            "forget_phrase",
        ]),
    ))
    .expect("failed to run tauri-build");
}
