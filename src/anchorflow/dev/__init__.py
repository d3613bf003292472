"""Development tools that ship with anchorflow: local emulators of the SaaS APIs (`emulators`),
deterministic synthetic traffic (`synth`), and the demo (`demo`)."""
