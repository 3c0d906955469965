//! The file and folder names the sensitive places are made of.

pub(super) const SHELL_RC: &[&str] = &[
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".bash_aliases",
    ".profile",
    ".zshrc",
    ".zshenv",
    ".zprofile",
    ".zlogin",
    ".zlogout",
    ".cshrc",
    ".tcshrc",
    ".kshrc",
    ".mkshrc",
    ".inputrc",
    ".xprofile",
    ".xinitrc",
    ".xsessionrc",
];
pub(super) const CRED_FILES: &[&str] =
    &[".netrc", ".npmrc", ".pypirc", ".git-credentials", ".pgpass", ".my.cnf", "_netrc"];
pub(super) const CRED_DIRS: &[&str] = &[".aws", ".kube", ".docker", ".gnupg", ".azure"];
pub(super) const KEY_EXT: &[&str] = &[".pem", ".key", ".p12", ".pfx", ".jks", ".keystore", ".ppk"];
