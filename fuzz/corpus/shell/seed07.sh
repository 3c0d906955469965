cat <<EOF
hi $USER
EOF