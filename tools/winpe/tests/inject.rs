//! `rvblk winpe inject`: files, SYSTEM hive keys and values, idempotence, --remove, errors.
//! Verified with wimlib-imagex and hivexsh/hivexml.

mod common;
use common::*;
use rvblk_winpe::cli::run_winpe_args;
use std::path::Path;

fn inject(wim: &Path, pkg: &Path, extra: &[&str]) -> rvblk_winpe::cli::Outcome {
    let mut a = args(&[&"inject", &wim, &"--package", &pkg]);
    a.extend(extra.iter().map(Into::into));
    run_winpe_args(a)
}

fn expected_values(driver_idx: &str) -> Vec<(String, Vec<String>)> {
    let cs = "ControlSet001";
    let mut v = vec![
        (
            format!("{cs}\\Services\\rvblk"),
            vec![
                "\"Type\"=dword:00000001".to_string(),
                "\"Start\"=dword:00000000".into(),
                "\"ErrorControl\"=dword:00000001".into(),
                "\"ImagePath\"=str(2):\"\\\\SystemRoot\\\\System32\\\\drivers\\\\rvblk.sys\""
                    .into(),
                "\"Group\"=\"SCSI miniport\"".into(),
                "\"DisplayName\"=\"rvblk RAM disk SCSI adapter\"".into(),
            ],
        ),
        (
            format!("{cs}\\Services\\rvblk\\Parameters"),
            vec!["\"BusType\"=dword:00000001".to_string()],
        ),
        (
            format!("{cs}\\Enum\\Root\\RVBLK\\0000"),
            vec![
                format!("\"HardwareID\"=hex(7):{}", multi_hex(&["ROOT\\RVBLK"])),
                "\"Service\"=\"rvblk\"".into(),
                "\"ClassGUID\"=\"{4d36e97b-e325-11ce-bfc1-08002be10318}\"".into(),
                "\"Class\"=\"SCSIAdapter\"".into(),
                "\"ConfigFlags\"=dword:00000000".into(),
                "\"DeviceDesc\"=\"rvblk RAM disk SCSI adapter\"".into(),
                format!("\"Driver\"=\"{{4d36e97b-e325-11ce-bfc1-08002be10318}}\\\\{driver_idx}\""),
                "\"Mfg\"=\"rvblk\"".into(),
            ],
        ),
        (
            format!("{cs}\\Control\\Class\\{CLASS}\\{driver_idx}"),
            vec![
                "\"DriverDesc\"=\"rvblk RAM disk SCSI adapter\"".to_string(),
                "\"ProviderName\"=\"rvblk project\"".into(),
                "\"DriverVersion\"=\"0.1.2.3\"".into(),
                "\"DriverDate\"=\"3-7-2025\"".into(),
                // 2025-03-07 00:00 UTC as FILETIME, little endian
                format!(
                    "\"DriverDateData\"=hex(3):{}",
                    hexbytes(&133_857_792_000_000_000u64.to_le_bytes())
                ),
                "\"InfPath\"=\"rvblk.inf\"".into(),
                "\"InfSection\"=\"rvblk_Install\"".into(),
                "\"MatchingDeviceId\"=\"root\\\\rvblk\"".into(),
            ],
        ),
    ];
    for (_, vals) in &mut v {
        vals.sort();
    }
    v
}

fn hexbytes(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Values of a key without rvblk's inject record.
fn values_without_record(hive: &Path, key: &str) -> Option<Vec<String>> {
    lsval(hive, key).map(|v| {
        v.into_iter()
            .filter(|l| !l.starts_with("\"RvblkInjected"))
            .collect()
    })
}

fn check_injected(hive: &Path, driver_idx: &str) {
    for (key, want) in expected_values(driver_idx) {
        assert_eq!(
            values_without_record(hive, &key),
            Some(want),
            "values of {key}"
        );
    }
}

#[test]
fn x64_image_gets_everything_as_specified() {
    let t = tempfile::tempdir().unwrap();
    let pkg = package(t.path());
    let wim = one_image_wim(t.path(), "pe64", AMD64, false);
    let before_listing = wim_listing(&wim, 1);
    let before_hive = hive_content(&extract_hive(&wim, 1, &t.path().join("x0")));

    let o = inject(&wim, &pkg, &[]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("+ /Windows/System32/drivers/rvblk.sys"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("updated in place"), "{}", o.stdout);

    let x = t.path().join("x1");
    assert_eq!(
        extract(&wim, 1, "/Windows/System32/drivers/rvblk.sys", &x).as_deref(),
        Some(AMD64_SYS)
    );
    assert_eq!(
        extract(&wim, 1, "/Windows/INF/rvblk.inf", &x).as_deref(),
        Some(INF.as_bytes())
    );
    let hive = extract_hive(&wim, 1, &t.path().join("x2"));
    // 0000 belongs to another driver: rvblk takes the next free index.
    check_injected(&hive, "0001");
    // The other class key and service are untouched; no CDDB on a Windows 8+-like hive.
    assert_eq!(
        lsval(
            &hive,
            &format!("ControlSet001\\Control\\Class\\{CLASS}\\0000")
        )
        .unwrap(),
        vec![
            "\"DriverDesc\"=\"Intel\"".to_string(),
            "\"MatchingDeviceId\"=\"pci\\\\ven_8086\"".into()
        ]
    );
    assert_eq!(
        ls(&hive, "ControlSet001\\Control\\CriticalDeviceDatabase"),
        None
    );

    // Second run: nothing to do, WIM byte-identical.
    let bytes = std::fs::read(&wim).unwrap();
    let o = inject(&wim, &pkg, &[]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("already up to date") && o.stdout.contains("not modified"),
        "{}",
        o.stdout
    );
    assert_eq!(
        std::fs::read(&wim).unwrap(),
        bytes,
        "second inject must not touch the WIM"
    );

    // --remove: back to the original files and registry content.
    let o = run_winpe_args(args(&[&"inject", &wim, &"--remove"]));
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("- /Windows/System32/drivers/rvblk.sys"),
        "{}",
        o.stdout
    );
    let after_hive = hive_content(&extract_hive(&wim, 1, &t.path().join("x3")));
    assert_eq!(after_hive, before_hive, "registry content after --remove");
    let strip = |v: Vec<(String, String)>| -> Vec<(String, String)> {
        v.into_iter()
            .map(|(p, h)| {
                if p.ends_with("config/SYSTEM") {
                    (p, String::new())
                } else {
                    (p, h)
                }
            })
            .collect()
    };
    assert_eq!(
        strip(wim_listing(&wim, 1)),
        strip(before_listing),
        "file list and SHA-1s after --remove"
    );
    assert!(
        !wim_paths(&wim, 1)
            .iter()
            .any(|p| p.eq_ignore_ascii_case("/Windows/INF")),
        "created directory removed"
    );

    // Removing again: nothing to do.
    let bytes = std::fs::read(&wim).unwrap();
    let o = run_winpe_args(args(&[&"inject", &wim, &"--remove"]));
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("nothing to remove"), "{}", o.stdout);
    assert_eq!(std::fs::read(&wim).unwrap(), bytes);
}
