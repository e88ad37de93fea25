"""MITRE ATT&CK (Enterprise) names for the techniques Ramparts' rules cite, and their tactic.

Only names are kept here (facts from attack.mitre.org); a technique not in the table is still
valid in a rule, it is just published without a name. A test checks that every technique
the built-in pack cites has a name here.
"""

from __future__ import annotations

TACTICS = {
    "TA0001": "Initial Access",
    "TA0002": "Execution",
    "TA0003": "Persistence",
    "TA0004": "Privilege Escalation",
    "TA0005": "Defense Evasion",
    "TA0006": "Credential Access",
    "TA0007": "Discovery",
    "TA0008": "Lateral Movement",
    "TA0009": "Collection",
    "TA0010": "Exfiltration",
    "TA0011": "Command and Control",
    "TA0040": "Impact",
}

# technique or sub-technique id -> (name, primary tactic id)
TECHNIQUES: dict[str, tuple[str, str]] = {
    "T1003": ("OS Credential Dumping", "TA0006"),
    "T1003.008": ("/etc/passwd and /etc/shadow", "TA0006"),
    "T1014": ("Rootkit", "TA0005"),
    "T1041": ("Exfiltration Over C2 Channel", "TA0010"),
    "T1046": ("Network Service Discovery", "TA0007"),
    "T1048": ("Exfiltration Over Alternative Protocol", "TA0010"),
    "T1053": ("Scheduled Task/Job", "TA0003"),
    "T1053.003": ("Cron", "TA0003"),
    "T1059": ("Command and Scripting Interpreter", "TA0002"),
    "T1059.004": ("Unix Shell", "TA0002"),
    "T1059.006": ("Python", "TA0002"),
    "T1068": ("Exploitation for Privilege Escalation", "TA0004"),
    "T1069": ("Permission Groups Discovery", "TA0007"),
    "T1071": ("Application Layer Protocol", "TA0011"),
    "T1071.004": ("DNS", "TA0011"),
    "T1078": ("Valid Accounts", "TA0001"),
    "T1078.004": ("Cloud Accounts", "TA0001"),
    "T1087": ("Account Discovery", "TA0007"),
    "T1087.004": ("Cloud Account", "TA0007"),
    "T1090": ("Proxy", "TA0011"),
    "T1090.003": ("Multi-hop Proxy", "TA0011"),
    "T1098": ("Account Manipulation", "TA0003"),
    "T1098.001": ("Additional Cloud Credentials", "TA0003"),
    "T1098.003": ("Additional Cloud Roles", "TA0003"),
    "T1098.004": ("SSH Authorized Keys", "TA0003"),
    "T1105": ("Ingress Tool Transfer", "TA0011"),
    "T1136": ("Create Account", "TA0003"),
    "T1136.001": ("Local Account", "TA0003"),
    "T1136.003": ("Cloud Account", "TA0003"),
    "T1190": ("Exploit Public-Facing Application", "TA0001"),
    "T1204": ("User Execution", "TA0002"),
    "T1222": ("File and Directory Permissions Modification", "TA0005"),
    "T1222.002": ("Linux and Mac File and Directory Permissions Modification", "TA0005"),
    "T1496": ("Resource Hijacking", "TA0040"),
    "T1496.001": ("Compute Hijacking", "TA0040"),
    "T1505": ("Server Software Component", "TA0003"),
    "T1505.003": ("Web Shell", "TA0003"),
    "T1525": ("Implant Internal Image", "TA0003"),
    "T1543": ("Create or Modify System Process", "TA0003"),
    "T1546": ("Event Triggered Execution", "TA0003"),
    "T1547": ("Boot or Logon Autostart Execution", "TA0003"),
    "T1547.006": ("Kernel Modules and Extensions", "TA0003"),
    "T1548": ("Abuse Elevation Control Mechanism", "TA0004"),
    "T1552": ("Unsecured Credentials", "TA0006"),
    "T1552.001": ("Credentials In Files", "TA0006"),
    "T1552.004": ("Private Keys", "TA0006"),
    "T1552.005": ("Cloud Instance Metadata API", "TA0006"),
    "T1552.007": ("Container API", "TA0006"),
    "T1555": ("Credentials from Password Stores", "TA0006"),
    "T1562": ("Impair Defenses", "TA0005"),
    "T1562.001": ("Disable or Modify Tools", "TA0005"),
    "T1562.006": ("Indicator Blocking", "TA0005"),
    "T1565": ("Data Manipulation", "TA0040"),
    "T1570": ("Lateral Tool Transfer", "TA0008"),
    "T1572": ("Protocol Tunneling", "TA0011"),
    "T1574": ("Hijack Execution Flow", "TA0003"),
    "T1574.006": ("Dynamic Linker Hijacking", "TA0003"),
    "T1580": ("Cloud Infrastructure Discovery", "TA0007"),
    "T1609": ("Container Administration Command", "TA0002"),
    "T1610": ("Deploy Container", "TA0005"),
    "T1611": ("Escape to Host", "TA0004"),
    "T1613": ("Container and Resource Discovery", "TA0007"),
    "T1620": ("Reflective Code Loading", "TA0005"),
    "T1648": ("Serverless Execution", "TA0002"),
    "T1651": ("Cloud Administration Command", "TA0002"),
    "T1082": ("System Information Discovery", "TA0007"),
    "T1083": ("File and Directory Discovery", "TA0007"),
    "T1095": ("Non-Application Layer Protocol", "TA0011"),
    "T1119": ("Automated Collection", "TA0009"),
    "T1530": ("Data from Cloud Storage", "TA0009"),
    "T1537": ("Transfer Data to Cloud Account", "TA0010"),
    "T1538": ("Cloud Service Dashboard", "TA0007"),
    "T1526": ("Cloud Service Discovery", "TA0007"),
    "T1528": ("Steal Application Access Token", "TA0006"),
    "T1562.008": ("Disable or Modify Cloud Logs", "TA0005"),
    "T1578": ("Modify Cloud Compute Infrastructure", "TA0005"),
    "T1485": ("Data Destruction", "TA0040"),
    "T1486": ("Data Encrypted for Impact", "TA0040"),
    "T1027": ("Obfuscated Files or Information", "TA0005"),
    "T1036": ("Masquerading", "TA0005"),
    "T1070": ("Indicator Removal", "TA0005"),
    "T1070.004": ("File Deletion", "TA0005"),
    "T1140": ("Deobfuscate/Decode Files or Information", "TA0005"),
    "T1106": ("Native API", "TA0002"),
    "T1129": ("Shared Modules", "TA0002"),
    "T1057": ("Process Discovery", "TA0007"),
    "T1016": ("System Network Configuration Discovery", "TA0007"),
    "T1049": ("System Network Connections Discovery", "TA0007"),
    "T1110": ("Brute Force", "TA0006"),
    "T1021": ("Remote Services", "TA0008"),
    "T1021.004": ("SSH", "TA0008"),
    "T1219": ("Remote Access Tools", "TA0011"),
    "T1568": ("Dynamic Resolution", "TA0011"),
    "T1568.002": ("Domain Generation Algorithms", "TA0011"),
    "T1573": ("Encrypted Channel", "TA0011"),
    "T1499": ("Endpoint Denial of Service", "TA0040"),
    "T1498": ("Network Denial of Service", "TA0040"),
}


def technique_name(uid: str) -> str | None:
    found = TECHNIQUES.get(uid)
    return found[0] if found else None


def tactic_of(uid: str) -> tuple[str, str] | None:
    found = TECHNIQUES.get(uid) or TECHNIQUES.get(uid.split(".", 1)[0])
    if not found:
        return None
    return found[1], TACTICS[found[1]]
