"""Canned persona answers for examples/profile-fullstack: one feature across three languages.

Language tracks run in parallel, so replies are chosen from the prompt (which names the part a
persona works on) instead of by arrival order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "profile-fullstack"
FEATURE = (
    "User Profile Display: GET /api/v1/users/me/profile returns username, email, full_name and "
    "join_date (ISO date); a React component UserProfileDisplay shows it; the Java core gets a "
    "ProfileView with the same fields."
)
CONTRACT = '{"username": str, "email": str, "full_name": str, "join_date": "YYYY-MM-DD"}'

PLAN = {
    "summary": "show the current user's profile across API, web and core",
    "scope": "profile",
    "contract": CONTRACT,
    "tasks": [
        {
            "id": "T1",
            "language": "python",
            "title": "Profile endpoint",
            "acceptance_criteria": ["200 with the contract's fields", "401 without X-User-Id"],
            "files": ["src/python/app/main.py"],
        },
        {
            "id": "T2",
            "language": "javascript",
            "title": "UserProfileDisplay component",
            "acceptance_criteria": ["renders username, email, full name and join date"],
            "files": ["src/nodejs/src/UserProfileDisplay.jsx"],
        },
        {
            "id": "T3",
            "language": "java",
            "title": "ProfileView",
            "acceptance_criteria": ["maps a User to the contract's fields, ISO join date"],
            "files": ["src/java/src/main/java/com/example/profile/ProfileView.java"],
        },
    ],
    "test_files": [
        "src/python/tests/test_profile.py",
        "src/nodejs/tests/UserProfileDisplay.test.jsx",
        "src/java/src/test/java/com/example/profile/ProfileViewTest.java",
    ],
}

CONTEXT = json.dumps(
    {
        "files": [
            "src/python/app/main.py",
            "src/nodejs/src/UserBadge.jsx",
            "src/java/src/main/java/com/example/profile/User.java",
        ],
        "notes": "FastAPI app in src/python; React with Jest+RTL in src/nodejs; JUnit 5 in java.",
    }
)

TESTS = {
    "python": """Tests for the endpoint:

src/python/tests/test_profile.py
```python
from fastapi.testclient import TestClient

from app.main import app


def test_profile_of_the_current_user():
    response = TestClient(app).get("/api/v1/users/me/profile", headers={"X-User-Id": "1"})
    assert response.status_code == 200
    assert response.json() == {
        "username": "ada",
        "email": "ada@example.com",
        "full_name": "Ada Lovelace",
        "join_date": "2021-03-14",
    }


def test_profile_needs_a_user():
    assert TestClient(app).get("/api/v1/users/me/profile").status_code == 401
```
""",
    "javascript": """Component tests with React Testing Library:

src/nodejs/tests/UserProfileDisplay.test.jsx
```jsx
import { render, screen } from "@testing-library/react";

import UserProfileDisplay from "../src/UserProfileDisplay";

const profile = {
  username: "ada",
  email: "ada@example.com",
  full_name: "Ada Lovelace",
  join_date: "2021-03-14",
};

test("shows every field of the profile", () => {
  render(<UserProfileDisplay profile={profile} />);
  expect(screen.getByRole("heading")).toHaveTextContent("Ada Lovelace");
  expect(screen.getByText("@ada")).toBeInTheDocument();
  expect(screen.getByText("ada@example.com")).toBeInTheDocument();
  expect(screen.getByText("Joined 2021-03-14")).toBeInTheDocument();
});
```
""",
    "java": """JUnit 5 test for the view:

src/java/src/test/java/com/example/profile/ProfileViewTest.java
```java
package com.example.profile;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.LocalDate;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ProfileViewTest {
    @Test
    void carriesTheContractFields() {
        User user =
            new User(1, "ada", "ada@example.com", "Ada Lovelace", LocalDate.of(2021, 3, 14));
        Map<String, String> view = ProfileView.of(user).asMap();
        assertEquals(
            Map.of(
                "username", "ada",
                "email", "ada@example.com",
                "full_name", "Ada Lovelace",
                "join_date", "2021-03-14"),
            view);
    }
}
```
""",
}

CODE = {
    "python": """The endpoint, before any catch-all route.

src/python/app/main.py
```python
<<<<<<< SEARCH
@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
=======
@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/v1/users/me/profile")
def my_profile(x_user_id: Annotated[int | None, Header()] = None) -> dict[str, str]:
    user = current_user(x_user_id)
    return {
        "username": user.username,
        "email": user.email,
        "full_name": user.full_name,
        "join_date": user.join_date.isoformat(),
    }
>>>>>>> REPLACE
```
""",
    "javascript": """The component:

src/nodejs/src/UserProfileDisplay.jsx
```jsx
// The signed-in user's profile, as GET /api/v1/users/me/profile returns it.
export default function UserProfileDisplay({ profile }) {
  return (
    <section aria-label="profile">
      <h2>{profile.full_name}</h2>
      <p>@{profile.username}</p>
      <p>{profile.email}</p>
      <p>Joined {profile.join_date}</p>
    </section>
  );
}
```
""",
    "java": """The view:

src/java/src/main/java/com/example/profile/ProfileView.java
```java
package com.example.profile;

import java.util.LinkedHashMap;
import java.util.Map;

/** A user's public profile, in the JSON contract's field names. */
public record ProfileView(String username, String email, String fullName, String joinDate) {
    public static ProfileView of(User user) {
        return new ProfileView(
            user.username(), user.email(), user.fullName(), user.joinDate().toString());
    }

    public Map<String, String> asMap() {
        Map<String, String> map = new LinkedHashMap<>();
        map.put("username", username);
        map.put("email", email);
        map.put("full_name", fullName);
        map.put("join_date", joinDate);
        return map;
    }
}
```
""",
}

REVIEW = json.dumps(
    {"verdict": "approve", "summary": "The three parts follow the contract.", "comments": []}
)


def _prompt(request: dict[str, Any]) -> str:
    return request["messages"][-1]["content"]


def _language(prompt: str) -> str:
    for language in ("python", "javascript", "java"):
        if f"the {language} part only" in prompt:
            return language
    raise AssertionError("a per-language prompt without its language note")


def guardian(request: dict[str, Any]) -> str:
    prompt = _prompt(request)
    if prompt.startswith("Review this change"):
        return REVIEW
    return TESTS[_language(prompt)]


def builder(request: dict[str, Any]) -> str:
    return CODE[_language(_prompt(request))]
