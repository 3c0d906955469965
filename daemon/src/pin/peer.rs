//! Who a peer is, as the daemon can observe it: the login of its user id.

/// The login name of `uid` from the user database, else `uid N`. Not the
/// environment: whoever started the daemon chose its `USER`.
pub fn login_of(uid: u32) -> String {
    let mut buf = vec![0u8; 4096];
    // SAFETY: passwd is plain data, zero is a valid value for it; getpwuid_r
    // writes only into `pwd` and `buf` (of the length given) and sets
    // `result` to null or to `&pwd`.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result);
        if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
            let name = std::ffi::CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned();
            if !name.is_empty() {
                return name;
            }
        }
    }
    format!("uid {uid}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_is_root() {
        assert_eq!(super::login_of(0), "root");
    }
}
