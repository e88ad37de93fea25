"""Packages and their known vulnerabilities: what Python code a function carries, and which
OSV advisories affect it.

* :mod:`~collectors.vulns.inventory` finds the distributions in a directory or zip;
* :mod:`~collectors.vulns.sbom` writes (and reads) CycloneDX SBOMs of them;
* :mod:`~collectors.vulns.osv` loads an OSV database for PyPI and matches versions;
* :mod:`~collectors.vulns.findings` turns matches into OCSF Vulnerability Findings and
  prioritises them by run-time facts;
* :mod:`~collectors.vulns.pep440` and :mod:`~collectors.vulns.cvss` are the version
  ordering and the CVSS v3 scoring they rely on.

Pure functions over local files: no network, no AWS calls. ``docs/vulnerabilities.md``
describes the commands built on them.
"""
