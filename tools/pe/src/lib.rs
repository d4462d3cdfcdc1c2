//! PE image inspection for rvblk's drivers: headers, checksum, sections, imports, instruction scan
