import { render, screen } from "@testing-library/react";

import UserBadge from "../src/UserBadge";

test("shows the full name and the handle", () => {
  render(<UserBadge user={{ full_name: "Ada Lovelace", username: "ada" }} />);
  expect(screen.getByLabelText("current user")).toHaveTextContent("Ada Lovelace @ada");
});
