// A user's name and handle, as shown in the page header.
export default function UserBadge({ user }) {
  return (
    <span className="user-badge" aria-label="current user">
      {user.full_name} <small>@{user.username}</small>
    </span>
  );
}
